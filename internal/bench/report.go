package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Options are the settings every bench shares.
type Options struct {
	// Target is the server to load.
	Target TargetOptions
	// Duration is the length of each measured phase. Defaults to 10s.
	Duration time.Duration
	// Timeout bounds each request from its due time. Defaults to 10s.
	Timeout time.Duration
	// Progress receives progress; nil writes none.
	Progress *Progress
	// HeapProfile, if set, is a file that bench tenants writes a pprof heap
	// profile to at each memory reading of its in-process server, so that
	// it ends holding the profile at the largest tenant count.
	HeapProfile string
}

// StreamReport is a Result with its histograms summarised.
type StreamReport struct {
	*Result
	// Throughput is 2xx answers per second of the arrival window.
	Throughput float64 `json:"throughput_ok_per_s"`
	// Latency covers every request from its due time; OKLatency only the
	// 2xx answers and LimitedLatency the 429s.
	Latency        Latency `json:"latency"`
	OKLatency      Latency `json:"latency_2xx"`
	LimitedLatency Latency `json:"latency_429"`
	// SendLag is the delay between a request's due time and its send: the
	// generator's own lateness, already inside Latency.
	SendLag Latency `json:"send_lag"`
	// LimitedServiceLatency is the 429s' latency from their send.
	LimitedServiceLatency Latency `json:"latency_429_from_send"`
}

// summarize turns r into a report and drops its histograms, which are
// large and no longer needed.
func summarize(r *Result) StreamReport {
	sr := StreamReport{
		Result:         r,
		Throughput:     r.Throughput(),
		Latency:        r.Latency.Summary(),
		OKLatency:      r.OKLatency.Summary(),
		LimitedLatency: r.LimitedLatency.Summary(),
		SendLag:        r.SendLag.Summary(),

		LimitedServiceLatency: r.LimitedServiceLatency.Summary(),
	}
	r.Latency, r.OKLatency, r.LimitedLatency, r.SendLag, r.LimitedServiceLatency = nil, nil, nil, nil, nil
	return sr
}

// merged returns the sum of rs, leaving rs unchanged.
func merged(name string, rs []*Result) *Result {
	out := &Result{Name: name}
	for _, r := range rs {
		out.Merge(r)
	}
	return out
}

// Goal is one of bulkhead's performance goals with what a bench
// measured for it. Goals are reported, never asserted: a missed goal does
// not fail the command.
type Goal struct {
	// Name says what is measured.
	Name string `json:"name"`
	// Target is the goal, such as "≤ 1.25×".
	Target string `json:"target"`
	// Measured is the measured value as text; empty when not measured.
	Measured string `json:"measured,omitempty"`
	// Value is the measured value (NaN when not measured, omitted in JSON).
	Value *float64 `json:"value,omitempty"`
	// Status is "met", "missed" or "not measured".
	Status string `json:"status"`
	// Note says by how much a goal was missed, or where it is measured.
	Note string `json:"note,omitempty"`
}

// bulkhead's performance goals, in the order reports list them: those of
// admission control, then those of the CRUD path.
const (
	goalVictimP99 = iota
	goalAdmitted
	goal429
	goalLimiterNs
	goalTenantCost
	goalTenantMemory
	goalGetVsBare
	goalListVsGet
)

// goals returns the goal list with nothing measured; each bench fills in
// what it measures.
func goals() []Goal {
	return []Goal{
		{Name: "victims' p99, flood / solo", Target: "≤ 1.25×", Status: "not measured", Note: "measured by bench noisy"},
		{Name: "aggressor admitted / plan rate", Target: "within ±10%", Status: "not measured", Note: "measured by bench noisy"},
		{Name: "429 answer latency, p99", Target: "≤ 1 ms", Status: "not measured", Note: "measured by bench noisy"},
		{Name: "limiter decision (parallel Go benchmark)", Target: "≤ 100 ns/op", Status: "not measured",
			Note: "a Go benchmark, not a load test: go test ./internal/ratelimit -run '^$' -bench . -cpu 2"},
		{Name: "per-request cost, 100,000 / 10 tenants", Target: "≤ 1.1×", Status: "not measured", Note: "measured by bench tenants"},
		{Name: "memory per idle tenant", Target: "≤ 2 KiB", Status: "not measured", Note: "measured by bench tenants (in process)"},
		{Name: "GET by id, throughput / bare net/http", Target: "≥ 0.40×", Status: "not measured", Note: "measured by bench crud --max"},
		{Name: "filtered list of 20, throughput / GET by id", Target: "≥ 0.35×", Status: "not measured",
			Note: "measured by bench crud --max (its indexed phases)"},
	}
}

// judge fills in g with value v against an upper limit (or a band
// [lo, hi] when lo > 0), formatted with format.
func (g *Goal) judge(v, lo, hi float64, format string) {
	g.Measured = fmt.Sprintf(format, v)
	g.Value = nil
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		g.Value = &v // JSON has no NaN
	}
	g.Note = ""
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		g.Status = "missed"
		g.Note = "no value could be measured"
	case v > hi && v >= 2*hi:
		g.Status = "missed"
		g.Note = fmt.Sprintf("%.1f× the limit", v/hi)
	case v > hi:
		g.Status = "missed"
		g.Note = fmt.Sprintf("by %.0f%% over the limit", (v/hi-1)*100)
	case lo > 0 && v < lo:
		g.Status = "missed"
		g.Note = fmt.Sprintf("by %.0f%% below the band", (1-v/lo)*100)
	default:
		g.Status = "met"
	}
}

// judgeMin fills in g with value v against a lower limit lo, formatted
// with format.
func (g *Goal) judgeMin(v, lo float64, format string) {
	g.Measured = fmt.Sprintf(format, v)
	g.Value = nil
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		g.Value = &v
	}
	g.Note = ""
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		g.Status = "missed"
		g.Note = "no value could be measured"
	case v < lo:
		g.Status = "missed"
		g.Note = fmt.Sprintf("by %.0f%% under the minimum", (1-v/lo)*100)
	default:
		g.Status = "met"
	}
}

// judgeNone fills in g with a count whose goal is zero; detail says what
// was counted.
func (g *Goal) judgeNone(n int64, detail string) {
	v := float64(n)
	g.Measured, g.Value, g.Note = fint(n), &v, ""
	g.Status = "met"
	if n != 0 {
		g.Status = "missed"
		g.Note = detail
	}
}

// addNote appends a sentence to g's note.
func (g *Goal) addNote(s string) {
	if g.Note == "" {
		g.Note = s
		return
	}
	g.Note += "; " + s
}

// writeGoals writes the goals table.
func writeGoals(w io.Writer, gs []Goal) {
	fmt.Fprintln(w, "\nGoals (reported, not asserted)")
	rows := [][]string{{"goal", "target", "measured", "status", "note"}}
	for _, g := range gs {
		rows = append(rows, []string{g.Name, g.Target, dash(g.Measured), g.Status, g.Note})
	}
	table(w, rows, "llrll")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// table writes rows as aligned columns; align has 'l' or 'r' per column
// (missing ones are 'r'). The first row is the header.
func table(w io.Writer, rows [][]string, align string) {
	widths := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for ri, r := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			a := byte('r')
			if i < len(align) {
				a = align[i]
			}
			if i > 0 {
				b.WriteString("  ")
			}
			if a == 'l' {
				if i == len(r)-1 {
					pad = ""
				}
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
		if ri == 0 {
			var u strings.Builder
			u.WriteString("  ")
			for i := range r {
				if i > 0 {
					u.WriteString("  ")
				}
				u.WriteString(strings.Repeat("-", widths[i]))
			}
			fmt.Fprintln(w, u.String())
		}
	}
}

func writeTarget(w io.Writer, t TargetInfo) {
	fmt.Fprintf(w, "target: %s %s (database: %s)\n", t.Mode, t.URL, t.Database)
	fmt.Fprintf(w, "note:   %s\n", t.Note)
	fmt.Fprintf(w, "host:   %s/%s, %d CPUs, GOMAXPROCS=%d, %s\n", t.GOOS, t.GOARCH, t.NumCPU, t.GOMAXPROCS, t.GoVersion)
}

// fms formats milliseconds with three significant digits or so.
func fms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func fsec(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f s", v)
	}
	return fmt.Sprintf("%.1f s", v)
}

func fint(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func frate(v float64) string {
	if v >= 100 {
		return fint(int64(math.Round(v))) + "/s"
	}
	return fmt.Sprintf("%.1f/s", v)
}

func fratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}

func fbytes(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.2f KiB", v/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", v)
	}
}

// Ratio is one measurement over another of the same run; NaN when the
// other is zero or was not measured, which JSON gives as null.
type Ratio float64

// MarshalJSON gives r as a JSON number, or null when it is not finite.
func (r Ratio) MarshalJSON() ([]byte, error) {
	if f := float64(r); !math.IsNaN(f) && !math.IsInf(f, 0) {
		return json.Marshal(f)
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (r *Ratio) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = Ratio(math.NaN())
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*r = Ratio(f)
	return err
}

// ratio returns a/b, NaN when b is zero.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// errorsText lists a stream's non-2xx outcomes, or "0".
func errorsText(r *Result) string {
	var parts []string
	for _, p := range []struct {
		n    int64
		name string
	}{
		{r.Limited, "429"}, {r.Shed, "503"}, {r.ClientErrors, "4xx"}, {r.ServerErrors, "5xx"},
		{r.OtherStatus, "other"}, {r.Timeouts - r.Expired, "timeouts"},
		{r.Expired, "expired unsent"}, {r.Closed, "closed unanswered"}, {r.Cut, "cut at end"},
		{r.TransportErrors - r.Timeouts - r.Closed - r.Cut, "transport"},
		{r.Unsent, "unsent at end"},
	} {
		if p.n > 0 {
			parts = append(parts, fint(p.n)+" "+p.name)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}
