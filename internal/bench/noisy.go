package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// NoisyOptions configures bench noisy.
type NoisyOptions struct {
	Options
	// Victims is the number of victim tenants. Defaults to 4.
	Victims int
	// VictimRate is each victim's arrival rate, requests per second: 60%
	// gets, 30% light lists, 10% creates. Defaults to 20.
	VictimRate float64
	// VictimConns bounds each victim's requests in flight. Defaults to 64,
	// enough for its rate through stalls of seconds.
	VictimConns int
	// VictimRecords is the records seeded per victim. Defaults to 200.
	VictimRecords int
	// AggressorPlan is the aggressor's plan in the isolated run. Zero
	// fields default to rate 20/s, burst 20, max_inflight 8, weight 1.
	AggressorPlan tenant.Plan
	// AggressorRate is the aggressor's arrival rate: 75% heavy lists
	// (limit 1000, a substring filter), 25% creates. Defaults to 50× the
	// plan's rate.
	AggressorRate float64
	// AggressorConns bounds its requests in flight. Defaults to 64.
	AggressorConns int
	// AggressorKeys is the API keys it rotates through, so that its
	// tenant's limit binds rather than a per-key one. Defaults to 8.
	AggressorKeys int
	// AggressorRecords is the records seeded for it, enough to fill its
	// pages of 1000. Defaults to 1200.
	AggressorRecords int
}

// NoisySettings are the settings a NoisyReport was made with: the options
// after defaults, durations in seconds, the request mixes and the queries.
type NoisySettings struct {
	DurationSec      float64 `json:"duration_s"`
	TimeoutSec       float64 `json:"timeout_s"`
	Victims          int     `json:"victims"`
	VictimRate       float64 `json:"victim_rate_per_s"`
	VictimConns      int     `json:"victim_conns"`
	VictimMix        string  `json:"victim_mix"`
	AggressorRate    float64 `json:"aggressor_rate_per_s"`
	AggressorConns   int     `json:"aggressor_conns"`
	AggressorKeys    int     `json:"aggressor_keys"`
	AggressorMix     string  `json:"aggressor_mix"`
	AggressorRecords int     `json:"aggressor_records"`
	LightQuery       string  `json:"light_list_query"`
	HeavyQuery       string  `json:"heavy_list_query"`
}

// VictimsReport is the victims' outcome in one phase.
type VictimsReport struct {
	// All merges every victim; PerVictim keeps them apart.
	All       StreamReport   `json:"all"`
	PerVictim []StreamReport `json:"per_victim"`
}

// FloodReport is one flood phase: the victims and the aggressor on
// AggressorPlan, side by side.
type FloodReport struct {
	Name          string        `json:"name"`
	AggressorPlan string        `json:"aggressor_plan"`
	Victims       VictimsReport `json:"victims"`
	Aggressor     StreamReport  `json:"aggressor"`
	// VictimP50Ratio and VictimP99Ratio are the victims' latency
	// quantiles here over the solo phase's.
	VictimP50Ratio float64 `json:"victim_p50_ratio"`
	VictimP99Ratio float64 `json:"victim_p99_ratio"`
	// WorstVictimP99Ratio is the largest per-victim p99 ratio.
	WorstVictimP99Ratio float64 `json:"worst_victim_p99_ratio"`
	// VictimErrors counts the victims' non-2xx outcomes.
	VictimErrors int64 `json:"victim_errors"`
	// AdmittedRate is the aggressor's 2xx per second over the window;
	// AdmittedSteadyRate leaves out the first second, where a burst
	// allowance is spent. AdmittedRatio is the steady rate over PlanRate.
	AdmittedRate       float64 `json:"admitted_rate_per_s"`
	AdmittedSteadyRate float64 `json:"admitted_steady_rate_per_s"`
	PlanRate           float64 `json:"plan_rate_per_s"`
	AdmittedRatio      float64 `json:"admitted_ratio"`
}

// NoisyReport is the outcome of bench noisy: the victims alone (Solo), then
// the flood runs, isolated (the aggressor on its plan) and unlimited, and
// the goals.
type NoisyReport struct {
	Bench    string        `json:"bench"`
	Target   TargetInfo    `json:"target"`
	Settings NoisySettings `json:"settings"`
	// Plans are the plans used, as put on the server.
	Plans []tenant.Plan  `json:"plans"`
	Solo  VictimsReport  `json:"solo"`
	Runs  []*FloodReport `json:"floods"`
	Goals []Goal         `json:"goals"`
}

// RunNoisy measures victim tenants alone, then beside an aggressor far
// over its plan (isolated), then beside the same aggressor on an unlimited
// plan (what no isolation looks like). It returns an error only when the
// target cannot be set up.
func RunNoisy(ctx context.Context, o NoisyOptions) (*NoisyReport, error) {
	o.Victims = orInt(o.Victims, 4)
	o.VictimRate = orFloat(o.VictimRate, 20)
	o.VictimConns = orInt(o.VictimConns, 64)
	o.VictimRecords = orInt(o.VictimRecords, 200)
	ap := &o.AggressorPlan
	ap.Name = planAggressor
	ap.RatePerSec = orFloat(ap.RatePerSec, 20)
	ap.Burst = orInt(ap.Burst, 20)
	ap.MaxInflight = orInt(ap.MaxInflight, 8)
	ap.Weight = orInt(ap.Weight, 1)
	ap.MaxRecords = max(ap.MaxRecords, 1<<40)
	ap.MaxBytes = max(ap.MaxBytes, 1<<50)
	o.AggressorRate = orFloat(o.AggressorRate, 50*ap.RatePerSec)
	o.AggressorConns = orInt(o.AggressorConns, 64)
	o.AggressorKeys = orInt(o.AggressorKeys, 8)
	o.AggressorRecords = orInt(o.AggressorRecords, 1200)
	victimPlan := tenant.Plan{Name: planVictim, RatePerSec: 100, Burst: 200, MaxInflight: 32, Weight: 4,
		MaxRecords: 1 << 40, MaxBytes: 1 << 50}

	e, err := open(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer e.close()
	d := e.opts.Duration
	rep := &NoisyReport{Bench: "noisy", Target: e.info(), Goals: goals(),
		Plans: []tenant.Plan{victimPlan, *ap, unlimitedPlan()},
		Settings: NoisySettings{
			DurationSec: d.Seconds(), TimeoutSec: e.opts.Timeout.Seconds(),
			Victims: o.Victims, VictimRate: o.VictimRate, VictimConns: o.VictimConns,
			VictimMix:     "60% get by id, 30% light list, 10% create",
			AggressorRate: o.AggressorRate, AggressorConns: o.AggressorConns, AggressorKeys: o.AggressorKeys,
			AggressorMix:     "75% heavy list, 25% create",
			AggressorRecords: o.AggressorRecords, LightQuery: lightQuery, HeavyQuery: heavyQuery,
		}}

	// Set up: every tenant starts on the unlimited plan so that seeding is
	// not throttled; the aggressor moves to its plan before measuring.
	e.p.Stepf("putting plans %s, %s, %s", planVictim, planAggressor, planUnlimited)
	for _, p := range rep.Plans {
		if err := e.setup.putPlan(ctx, p); err != nil {
			return nil, err
		}
	}
	e.p.Stepf("creating %d victims (%d records each) and the aggressor (%d keys, %d records)",
		o.Victims, o.VictimRecords, o.AggressorKeys, o.AggressorRecords)
	victims := make([]*tenantFixture, o.Victims)
	for i := range victims {
		if victims[i], err = e.setup.newTenant(ctx, e.setup.slug("victim", i), planUnlimited, 1); err != nil {
			return nil, err
		}
		if err := e.setup.seed(ctx, victims[i], o.VictimRecords); err != nil {
			return nil, err
		}
		if err := e.setup.setPlan(ctx, victims[i].Slug, planVictim); err != nil {
			return nil, err
		}
	}
	agg, err := e.setup.newTenant(ctx, e.setup.slug("aggressor", 0), planUnlimited, o.AggressorKeys)
	if err != nil {
		return nil, err
	}
	if err := e.setup.seed(ctx, agg, o.AggressorRecords); err != nil {
		return nil, err
	}

	victimStreams := make([]*Stream, len(victims))
	for i, f := range victims {
		c := newClient(e.target, o.VictimConns)
		defer c.close()
		victimStreams[i] = &Stream{Name: f.Slug, Rate: o.VictimRate, Workers: o.VictimConns,
			SendFunc: func(ctx context.Context, seq int64) (int, error) {
				switch seq % 10 {
				case 0, 2, 3, 5, 6, 8:
					return c.get(ctx, f, f.Keys[0], mix(seq))
				case 1, 4, 7:
					return c.list(ctx, f, f.Keys[0], lightQuery)
				default:
					return c.create(ctx, f, f.Keys[0], seq)
				}
			}}
	}
	ac := newClient(e.target, o.AggressorConns)
	defer ac.close()
	// The aggressor is coarse: spinning for its send times would take the
	// processor from the server it floods, and its latency is not measured
	// against a goal except the 429s', which count from their send.
	aggStream := &Stream{Name: agg.Slug, Rate: o.AggressorRate, Workers: o.AggressorConns, Coarse: true,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			key := agg.key(seq)
			if seq%4 == 3 {
				return ac.create(ctx, agg, key, 1_000_000+seq)
			}
			return ac.list(ctx, agg, key, heavyQuery)
		}}

	if err := e.switchPlan(ctx, agg.Slug, planAggressor); err != nil {
		return nil, err
	}
	e.phase(ctx, "noisy/warm-up", time.Second, victimStreams...)
	solo := e.phase(ctx, "noisy/solo", d, victimStreams...)
	rep.Solo = victimsReport(solo)
	soloAll := rep.Solo.All
	for _, plan := range []tenant.Plan{*ap, unlimitedPlan()} {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		name := "flood-isolated"
		if plan.Name == planUnlimited {
			name = "flood-unlimited"
			if err := e.switchPlan(ctx, agg.Slug, plan.Name); err != nil {
				return nil, err
			}
		}
		res := e.phase(ctx, "noisy/"+name, d, append(victimStreams[:len(victimStreams):len(victimStreams)], aggStream)...)
		fr := &FloodReport{Name: name, AggressorPlan: plan.Name, PlanRate: plan.RatePerSec}
		fr.Victims = victimsReport(res[:len(victims)])
		fr.Aggressor = summarize(res[len(victims)])
		fr.VictimP50Ratio = ratio(fr.Victims.All.Latency.P50Ms, soloAll.Latency.P50Ms)
		fr.VictimP99Ratio = ratio(fr.Victims.All.Latency.P99Ms, soloAll.Latency.P99Ms)
		for i, v := range fr.Victims.PerVictim {
			fr.WorstVictimP99Ratio = max(fr.WorstVictimP99Ratio, ratio(v.Latency.P99Ms, rep.Solo.PerVictim[i].Latency.P99Ms))
		}
		fr.VictimErrors = fr.Victims.All.Errors()
		fr.AdmittedRate = fr.Aggressor.Throughput
		fr.AdmittedSteadyRate = steadyRate(fr.Aggressor.Result, d)
		fr.AdmittedRatio = ratio(fr.AdmittedSteadyRate, plan.RatePerSec)
		rep.Runs = append(rep.Runs, fr)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}

	iso := rep.Runs[0]
	rep.Goals[goalVictimP99].judge(iso.VictimP99Ratio, 0, 1.25, "%.2f×")
	rep.Goals[goalAdmitted].judge(iso.AdmittedRatio, 0.9, 1.1, "%.2f×")
	g := &rep.Goals[goalAdmitted]
	g.Measured = fmt.Sprintf("%.1f/s of %g/s (%.2f×)", iso.AdmittedSteadyRate, iso.PlanRate, iso.AdmittedRatio)
	if g.Status == "missed" && !math.IsNaN(iso.AdmittedRatio) {
		side := "over"
		if iso.AdmittedRatio < 1 {
			side = "under"
		}
		g.Note = fmt.Sprintf("admitted %.0f%% %s the plan rate", math.Abs(iso.AdmittedRatio-1)*100, side)
	}
	if iso.Aggressor.Limited == 0 {
		rep.Goals[goal429].Status = "missed"
		rep.Goals[goal429].Note = "no 429 answers: the server did not rate-limit the aggressor"
	} else {
		g := &rep.Goals[goal429]
		g.judge(iso.Aggressor.LimitedServiceLatency.P99Ms, 0, 1, "%.2f ms")
		g.addNote(fmt.Sprintf("from the send; %.2f ms from the scheduled time", iso.Aggressor.LimitedLatency.P99Ms))
	}
	return rep, nil
}

// switchPlan moves a tenant to plan and waits for the change to apply (a
// plan change takes effect within a second) and for the limiter state of
// the old plan to be forgotten by the new one.
func (e *env) switchPlan(ctx context.Context, slug, plan string) error {
	e.p.Stepf("moving %s to plan %s", slug, plan)
	if err := e.setup.setPlan(ctx, slug, plan); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(1500 * time.Millisecond):
		return nil
	}
}

func victimsReport(rs []*Result) VictimsReport {
	var v VictimsReport
	v.All = summarize(merged("all victims", rs))
	for _, r := range rs {
		v.PerVictim = append(v.PerVictim, summarize(r))
	}
	return v
}

// steadyRate is r's 2xx per second leaving out the first second of a window
// of length d (all of it when d is 2s or less).
func steadyRate(r *Result, d time.Duration) float64 {
	if d <= 2*time.Second || len(r.OKPerSecond) < 2 {
		return r.Throughput()
	}
	var n int64
	for _, c := range r.OKPerSecond[1:] {
		n += c
	}
	return float64(n) / (d - time.Second).Seconds()
}

// WriteText writes r as tables for a reader.
func (r *NoisyReport) WriteText(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "bulkhead bench noisy: %d victims at %s each (%s), %gs per phase\n",
		s.Victims, frate(s.VictimRate), s.VictimMix, s.DurationSec)
	fmt.Fprintf(w, "aggressor: %s offered (%s) over %d connections and %d API keys\n",
		frate(s.AggressorRate), s.AggressorMix, s.AggressorConns, s.AggressorKeys)
	writeTarget(w, r.Target)
	fmt.Fprintf(w, "light list = …/records%s\nheavy list = …/records%s\n", s.LightQuery, s.HeavyQuery)

	fmt.Fprintln(w, "\nPlans")
	rows := [][]string{{"plan", "rate_per_sec", "burst", "max_inflight", "weight"}}
	for _, p := range r.Plans {
		rows = append(rows, []string{p.Name, fmt.Sprintf("%g", p.RatePerSec), fint(int64(p.Burst)), fint(int64(p.MaxInflight)), fmt.Sprint(p.Weight)})
	}
	table(w, rows, "l")

	fmt.Fprintln(w, "\nVictims (all victims merged; latency from the scheduled send time)")
	rows = [][]string{{"phase", "aggressor plan", "sent", "errors", "p50", "p99", "p99.9", "max", "p50 ×solo", "p99 ×solo", "worst victim p99 ×solo"}}
	so := r.Solo.All
	rows = append(rows, []string{"solo", "-", fint(so.Sent), errorsText(so.Result), fms(so.Latency.P50Ms), fms(so.Latency.P99Ms),
		fms(so.Latency.P999Ms), fms(so.Latency.MaxMs), "1.00×", "1.00×", "-"})
	for _, f := range r.Runs {
		v := f.Victims.All
		rows = append(rows, []string{f.Name, f.AggressorPlan, fint(v.Sent), errorsText(v.Result), fms(v.Latency.P50Ms), fms(v.Latency.P99Ms),
			fms(v.Latency.P999Ms), fms(v.Latency.MaxMs), fratio(f.VictimP50Ratio), fratio(f.VictimP99Ratio), fratio(f.WorstVictimP99Ratio)})
	}
	table(w, rows, "ll")

	fmt.Fprintln(w, "\nAggressor")
	rows = [][]string{{"phase", "plan rate", "offered", "sent", "late", "unsent", "admitted 2xx/s", "steady 2xx/s", "×plan", "429", "503", "other errors", "429 p50", "429 p99", "429 p99 from send", "2xx p99"}}
	for _, f := range r.Runs {
		a := f.Aggressor
		other := a.ClientErrors + a.ServerErrors + a.OtherStatus + a.TransportErrors
		l429p50, l429p99, l429send := "-", "-", "-"
		if a.Limited > 0 {
			l429p50, l429p99 = fms(a.LimitedLatency.P50Ms), fms(a.LimitedLatency.P99Ms)
			l429send = fms(a.LimitedServiceLatency.P99Ms)
		}
		planRate := frate(f.PlanRate)
		if f.AggressorPlan == planUnlimited {
			planRate = "unlimited"
		}
		ratioText := fratio(f.AdmittedRatio)
		if f.AggressorPlan == planUnlimited {
			ratioText = "-"
		}
		rows = append(rows, []string{f.Name, planRate, frate(a.OfferedRate), fint(a.Sent), fint(a.Late), fint(a.Unsent), frate(f.AdmittedRate),
			frate(f.AdmittedSteadyRate), ratioText, fint(a.Limited), fint(a.Shed), fint(other), l429p50, l429p99, l429send, fms(a.OKLatency.P99Ms)})
	}
	table(w, rows, "l")
	fmt.Fprintln(w, "admitted = 2xx answers to requests sent in the window, per second; steady = the same leaving out the")
	fmt.Fprintln(w, "first second, where the plan's burst is spent. late = due while all its connections were busy; unsent =")
	fmt.Fprintln(w, "still waiting for one when the window ended (the aggressor is open loop too: it never slows down).")
	fmt.Fprintln(w, "The aggressor is sent on a timer without spinning, so its latencies from the scheduled time include up to")
	fmt.Fprintln(w, "a timer tick of the generator's own lag; \"from send\" leaves it out.")
	for _, f := range r.Runs {
		if f.Aggressor.FirstError != "" {
			fmt.Fprintf(w, "%s: first aggressor transport error: %s\n", f.Name, f.Aggressor.FirstError)
		}
	}
	writeGoals(w, r.Goals)
}
