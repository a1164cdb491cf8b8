package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// env is what a bench run holds: its target, settings and progress.
type env struct {
	opts   Options
	target *Target
	setup  *setup
	runner *Runner
	p      *Progress
}

func open(ctx context.Context, opts Options) (*env, error) {
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Target.URL == "" {
		opts.Progress.Stepf("starting an in-process server")
	}
	t, err := Open(ctx, opts.Target)
	if err != nil {
		return nil, err
	}
	return &env{opts: opts, target: t, setup: newSetup(t), runner: &Runner{Timeout: opts.Timeout}, p: opts.Progress}, nil
}

func (e *env) close() error {
	if e.target.App != nil {
		e.p.Stepf("stopping the in-process server")
	}
	return e.target.Close()
}

func (e *env) info() TargetInfo { return e.target.Info(e.opts.Target.DatabaseURL) }

// phase runs streams for d, showing progress under name.
func (e *env) phase(ctx context.Context, name string, d time.Duration, streams ...*Stream) []*Result {
	run := e.runner.Start(ctx, d, streams...)
	e.p.watch(name, run)
	return run.Wait()
}

// CRUDOptions configures bench crud.
type CRUDOptions struct {
	Options
	// Rate is each phase's arrival rate, requests per second, spread over
	// the tenants. Defaults to 500.
	Rate float64
	// Tenants is the number of tenants. Defaults to 4.
	Tenants int
	// Conns bounds the requests in flight (one connection each).
	// Defaults to 64.
	Conns int
	// Max runs each phase closed-loop instead: Conns workers send back to
	// back, for the most the server does. Latency then counts from the
	// send and hides queueing (coordinated omission); Rate is ignored.
	Max bool
	// Seed is the records created per tenant before the phases. Defaults
	// to 100.
	Seed int
}

// CRUDSettings are the settings a CRUDReport was made with: the options
// after defaults, durations in seconds, Mode "open-loop" or "closed-loop"
// and the list query used.
type CRUDSettings struct {
	Mode        string  `json:"mode"`
	Rate        float64 `json:"rate_per_s"`
	DurationSec float64 `json:"duration_s"`
	TimeoutSec  float64 `json:"timeout_s"`
	Tenants     int     `json:"tenants"`
	Conns       int     `json:"conns"`
	Seed        int     `json:"seed_records_per_tenant"`
	ListQuery   string  `json:"list_query"`
}

// CRUDReport is the outcome of bench crud: one StreamReport per phase
// (create, get, list), and the goals, none of which crud measures.
type CRUDReport struct {
	Bench    string         `json:"bench"`
	Target   TargetInfo     `json:"target"`
	Settings CRUDSettings   `json:"settings"`
	Phases   []StreamReport `json:"phases"`
	Goals    []Goal         `json:"goals"`
}

// RunCRUD measures create, get and list, each phase on its own, at a fixed
// arrival rate (or closed loop with Max). It returns an error only when the
// target cannot be set up.
func RunCRUD(ctx context.Context, o CRUDOptions) (*CRUDReport, error) {
	o.Rate = orFloat(o.Rate, 500)
	o.Tenants = orInt(o.Tenants, 4)
	o.Conns = orInt(o.Conns, 64)
	o.Seed = orInt(o.Seed, 100)
	e, err := open(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep := &CRUDReport{Bench: "crud", Target: e.info(), Goals: goals(), Settings: CRUDSettings{
		Mode: "open-loop", Rate: o.Rate, DurationSec: e.opts.Duration.Seconds(), TimeoutSec: e.opts.Timeout.Seconds(),
		Tenants: o.Tenants, Conns: o.Conns, Seed: o.Seed, ListQuery: lightQuery,
	}}
	rate := o.Rate
	if o.Max {
		rep.Settings.Mode, rep.Settings.Rate, rate = "closed-loop", 0, 0
	}

	e.p.Stepf("creating %d tenants with %d records each", o.Tenants, o.Seed)
	if err := e.setup.putPlan(ctx, unlimitedPlan()); err != nil {
		return nil, err
	}
	fs := make([]*tenantFixture, o.Tenants)
	for i := range fs {
		if fs[i], err = e.setup.newTenant(ctx, e.setup.slug("crud", i), planUnlimited, 1); err != nil {
			return nil, err
		}
		if err := e.setup.seed(ctx, fs[i], o.Seed); err != nil {
			return nil, err
		}
	}

	c := newClient(e.target, o.Conns)
	defer c.close()
	pick := func(seq int64) *tenantFixture { return fs[seq%int64(len(fs))] }
	phases := []*Stream{
		{Name: "create", SendFunc: func(ctx context.Context, seq int64) (int, error) {
			f := pick(seq)
			return c.create(ctx, f, f.Keys[0], seq)
		}},
		{Name: "get", SendFunc: func(ctx context.Context, seq int64) (int, error) {
			f := pick(seq)
			return c.get(ctx, f, f.Keys[0], mix(seq))
		}},
		{Name: "list", SendFunc: func(ctx context.Context, seq int64) (int, error) {
			f := pick(seq)
			return c.list(ctx, f, f.Keys[0], lightQuery)
		}},
	}
	for _, s := range phases {
		s.Rate, s.Workers = rate, o.Conns
		res := e.phase(ctx, "crud/"+s.Name, e.opts.Duration, s)
		rep.Phases = append(rep.Phases, summarize(res[0]))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return rep, nil
}

// WriteText writes r as tables for a reader.
func (r *CRUDReport) WriteText(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "bulkhead bench crud: %s", s.Mode)
	if s.Mode == "open-loop" {
		fmt.Fprintf(w, " at %s per phase", frate(s.Rate))
	} else {
		fmt.Fprintf(w, " (latency from the send: hides queueing)")
	}
	fmt.Fprintf(w, ", %gs each, %d tenants, %d connections, %d seed records per tenant\n", s.DurationSec, s.Tenants, s.Conns, s.Seed)
	writeTarget(w, r.Target)
	fmt.Fprintf(w, "list = GET …/records%s\n\n", s.ListQuery)
	rows := [][]string{{"phase", "offered", "sent", "late", "2xx/s", "errors", "p50", "p99", "p99.9", "max", "send lag p99"}}
	for _, p := range r.Phases {
		offered := "closed"
		if p.OfferedRate > 0 {
			offered = frate(p.OfferedRate)
		}
		rows = append(rows, []string{p.Name, offered, fint(p.Sent), fint(p.Late), frate(p.Throughput), errorsText(p.Result),
			fms(p.Latency.P50Ms), fms(p.Latency.P99Ms), fms(p.Latency.P999Ms), fms(p.Latency.MaxMs), fms(p.SendLag.P99Ms)})
	}
	table(w, rows, "l")
	fmt.Fprintln(w, "\nLatency counts from each request's scheduled send time (open loop), over every request;")
	fmt.Fprintln(w, "late = due while every connection was busy (sent when one freed, the wait included).")
	fmt.Fprintln(w, "bench crud measures none of the admission-control goals; see bench noisy and bench tenants.")
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orFloat(v, def float64) float64 {
	if v <= 0 {
		return def
	}
	return v
}
