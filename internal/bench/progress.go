package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Progress writes what a bench is doing while it runs: a line per step, and
// during a measured phase a line a second with the phase, the elapsed time
// and the live counters. On a terminal the per-second line overwrites
// itself; elsewhere (a file, a CI log) each is a plain line. The zero value
// and nil write nothing.
type Progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	open bool // a per-second line is on the terminal without its newline
}

// NewProgress returns a Progress writing to w, overwriting lines when w is
// a terminal.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, tty: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Stepf writes one line about a setup step.
func (p *Progress) Stepf(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLine()
	fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
}

func (p *Progress) endLine() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

func (p *Progress) tick(phase string, r *Run, final bool) {
	if p == nil || p.w == nil {
		return
	}
	t := r.Totals()
	el := min(r.Elapsed(), r.Duration())
	state := fmt.Sprintf("%5.1fs/%.0fs", el.Seconds(), r.Duration().Seconds())
	if r.Elapsed() > r.Duration() {
		state = fmt.Sprintf("draining %d", t.Sent-t.Done)
	}
	if final {
		state = fmt.Sprintf("done in %.1fs", r.Elapsed().Seconds())
	}
	line := fmt.Sprintf("bench: %-22s %-14s sent %7d  ok %7d  429 %6d  503 %5d  err %5d  late %5d",
		phase, state, t.Sent, t.OK, t.Limited, t.Shed, t.Errors, t.Late)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.open = true
		if final {
			p.endLine()
		}
		return
	}
	fmt.Fprintln(p.w, line)
}

// watch reports on r every second until it ends.
func (p *Progress) watch(phase string, r *Run) {
	if p == nil || p.w == nil {
		<-r.Done()
		return
	}
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-r.Done():
			p.tick(phase, r, true)
			return
		case <-tk.C:
			p.tick(phase, r, false)
		}
	}
}

// count shows done() of total under label every second until stop is
// called, for the long setup steps.
func (p *Progress) count(label string, total int, done func() int) (stop func()) {
	if p == nil || p.w == nil {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	start := time.Now()
	show := func(final bool) {
		line := fmt.Sprintf("bench: %-22s %6.1fs  %s of %s", label, time.Since(start).Seconds(), fint(int64(done())), fint(int64(total)))
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.tty {
			fmt.Fprintf(p.w, "\r\x1b[K%s", line)
			p.open = true
			if final {
				p.endLine()
			}
			return
		}
		fmt.Fprintln(p.w, line)
	}
	go func() {
		defer close(exited)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				if time.Since(start) >= time.Second {
					show(true)
				}
				return
			case <-tk.C:
				show(false)
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}
