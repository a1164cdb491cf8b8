package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// The phases of bench crud that ratios and goals name.
const (
	phaseBare       = "bare"
	phaseGet        = "get"
	phaseGetIndexed = "get-indexed"
	// The encrypted tenant's phases (bench crud --encrypted).
	phaseCreateEncrypted = "create-encrypted"
	phaseGetEncrypted    = "get-encrypted"
	phaseListIndexed     = "list-indexed"
	phaseListUnindexed   = "list-unindexed"
)

// CRUDSettings are the settings a CRUDReport was made with: the options
// after defaults, durations in seconds, Mode "open-loop" or "closed-loop",
// the queries used, and the size of the bare baseline's answer.
type CRUDSettings struct {
	Mode        string  `json:"mode"`
	Rate        float64 `json:"rate_per_s"`
	DurationSec float64 `json:"duration_s"`
	TimeoutSec  float64 `json:"timeout_s"`
	Tenants     int     `json:"tenants"`
	Conns       int     `json:"conns"`
	Seed        int     `json:"seed_records_per_tenant"`
	ListQuery   string  `json:"list_query"`
	// BareBodyBytes is the size of the body the bare baseline answers:
	// that of a GET by id of one of the tenants' records.
	BareBodyBytes int `json:"bare_body_bytes"`
	// IndexedRecords is the indexed tenant's records, zero when its
	// phases were skipped; the queries are shown unescaped.
	IndexedRecords     int     `json:"indexed_records"`
	IndexTimeoutSec    float64 `json:"index_timeout_s,omitempty"`
	IndexedListQuery   string  `json:"indexed_list_query,omitempty"`
	UnindexedListQuery string  `json:"unindexed_list_query,omitempty"`
}

// CRUDReport is the outcome of bench crud: one StreamReport per phase
// (bare, create, get, list, then get-indexed, list-indexed and
// list-unindexed unless skipped), the ratios between them, and the goals.
type CRUDReport struct {
	Bench    string         `json:"bench"`
	Target   TargetInfo     `json:"target"`
	Settings CRUDSettings   `json:"settings"`
	Phases   []StreamReport `json:"phases"`
	// Index is the indexed tenant's collection; nil when skipped.
	Index *IndexReport `json:"index,omitempty"`
	// Ratios compare every phase with bare, and the indexed tenant's
	// lists with its get-indexed, all measured in this run.
	Ratios []PhaseRatio `json:"ratios"`
	// Goals are bulkhead's performance goals; bench crud measures the
	// last two, from Ratios, in closed loop.
	Goals []Goal `json:"goals"`
}

// PhaseRatio compares one phase with another of the same run.
type PhaseRatio struct {
	Phase string `json:"phase"`
	Base  string `json:"base"`
	// Throughput is the phase's 2xx answers per second over the base's:
	// the measure in closed loop. In open loop both are offered the same
	// rate, so it says nothing and is left out (null).
	Throughput Ratio `json:"throughput_ratio"`
	// P50 and P99 are the phase's latency quantiles over the base's: the
	// measure in open loop.
	P50 Ratio `json:"p50_ratio"`
	P99 Ratio `json:"p99_ratio"`
}

func newCRUDReport(e *env, o CRUDOptions) *CRUDReport {
	mode, rate := "open-loop", o.Rate
	if o.Max {
		mode, rate = "closed-loop", 0
	}
	rep := &CRUDReport{Bench: "crud", Target: e.info(), Goals: goals(), Settings: CRUDSettings{
		Mode: mode, Rate: rate, DurationSec: e.opts.Duration.Seconds(), TimeoutSec: e.opts.Timeout.Seconds(),
		Tenants: o.Tenants, Conns: o.Conns, Seed: o.Seed, ListQuery: lightQuery, IndexedRecords: o.IndexedRecords,
	}}
	if o.IndexedRecords > 0 {
		s := &rep.Settings
		s.IndexTimeoutSec = o.IndexTimeout.Seconds()
		s.IndexedListQuery = queryText("owner", ownerValue)
		s.UnindexedListQuery = queryText("team", teamValue)
	}
	return rep
}

func (r *CRUDReport) closedLoop() bool { return r.Settings.Mode == "closed-loop" }

// phase returns the phase called name, or nil if it did not run.
func (r *CRUDReport) phase(name string) *StreamReport {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i]
		}
	}
	return nil
}

// ratio returns the ratio of phase to base, or nil if either did not run.
func (r *CRUDReport) ratio(phase, base string) *PhaseRatio {
	for i := range r.Ratios {
		if pr := &r.Ratios[i]; pr.Phase == phase && pr.Base == base {
			return pr
		}
	}
	return nil
}

// compare fills in the ratios from the phases, then judges the goals.
func (r *CRUDReport) compare() {
	r.Ratios = nil
	add := func(phase, base string) {
		p, b := r.phase(phase), r.phase(base)
		if p == nil || b == nil {
			return
		}
		pr := PhaseRatio{Phase: phase, Base: base, Throughput: Ratio(math.NaN()),
			P50: Ratio(ratio(p.Latency.P50Ms, b.Latency.P50Ms)), P99: Ratio(ratio(p.Latency.P99Ms, b.Latency.P99Ms))}
		if r.closedLoop() {
			pr.Throughput = Ratio(ratio(p.Throughput, b.Throughput))
		}
		r.Ratios = append(r.Ratios, pr)
	}
	for _, p := range r.Phases {
		if p.Name != phaseBare {
			add(p.Name, phaseBare)
		}
	}
	add(phaseListIndexed, phaseGetIndexed)
	add(phaseListUnindexed, phaseGetIndexed)
	add(phaseCreateEncrypted, "create")
	add(phaseGetEncrypted, phaseGet)
	r.judge()
}

// judge fills in the goals bench crud measures.
func (r *CRUDReport) judge() {
	r.judgeRatio(&r.Goals[goalGetVsBare], phaseGet, phaseBare, 0.40)
	g := &r.Goals[goalListVsGet]
	if r.Index == nil {
		g.Note = "measured by bench crud --max with --indexed-records above 0"
		return
	}
	r.judgeRatio(g, phaseListIndexed, phaseGetIndexed, 0.35)
	if r.Index.State != "ready" {
		g.addNote(fmt.Sprintf("the index was %s, not ready, when measured", r.Index.State))
	}
}

// judgeRatio judges g, at least lo, on the throughput of phase over
// base's. In open loop, where throughput is the offered rate, it leaves g
// not measured and notes the latency ratios instead.
func (r *CRUDReport) judgeRatio(g *Goal, phase, base string, lo float64) {
	pr := r.ratio(phase, base)
	if pr == nil {
		return
	}
	lat := fmt.Sprintf("latency p50 %s, p99 %s", fratio(float64(pr.P50)), fratio(float64(pr.P99)))
	if !r.closedLoop() {
		g.Status = "not measured"
		g.Note = fmt.Sprintf("a throughput ratio: measured in closed loop (--max); this open-loop run's %s / %s %s", phase, base, lat)
		return
	}
	p, b := r.phase(phase), r.phase(base)
	g.judgeMin(float64(pr.Throughput), lo, "%.2f×")
	g.addNote(fmt.Sprintf("%s / %s; %s", frate(p.Throughput), frate(b.Throughput), lat))
	for _, s := range []*StreamReport{p, b} {
		if s.Errors() > 0 {
			g.addNote(fmt.Sprintf("%s had errors: %s", s.Name, errorsText(s.Result)))
		}
	}
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
	fmt.Fprintf(w, "bare = the get phase's requests sent to a bare net/http handler in this process, on loopback,\n"+
		"       answering the same %d-byte JSON body (no database)", s.BareBodyBytes)
	if r.Target.Mode == "url" {
		fmt.Fprint(w, "; the API is remote, so its ratios include the network")
	}
	fmt.Fprintf(w, "\nlist = GET …/records%s\n", s.ListQuery)
	if ix := r.Index; ix != nil {
		fmt.Fprintf(w, "indexed tenant %s: %s records in %s over %d owners, index (%s): %s",
			ix.Tenant, fint(int64(ix.Records)), ix.Collection, ix.Owners, strings.Join(ix.Fields, ", "), ix.State)
		if ix.TimedOut {
			fmt.Fprintf(w, " after the %gs timeout", s.IndexTimeoutSec)
		}
		if ix.Error != "" {
			fmt.Fprintf(w, " (%s)", ix.Error)
		}
		fmt.Fprintf(w, "\n  seeded in %s (%s), settled %s later\n", fsec(ix.SeedSec), frate(ix.SeedRate), fsec(ix.ReadySec))
		fmt.Fprintf(w, "list-indexed   = GET …/records%s\n", s.IndexedListQuery)
		fmt.Fprintf(w, "list-unindexed = GET …/records%s: no index\n", s.UnindexedListQuery)
	}
	fmt.Fprintln(w)
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
	r.writeRatios(w)
	if s.Mode == "open-loop" {
		fmt.Fprintln(w, "\nLatency counts from each request's scheduled send time (open loop), over every request;")
		fmt.Fprintln(w, "late = due while every connection was busy (sent when one freed, the wait included).")
	}
	fmt.Fprintln(w, "\nGoals of the CRUD path (reported, not asserted; the others are measured by bench noisy and bench tenants)")
	rows = [][]string{{"goal", "target", "measured", "status", "note"}}
	for _, g := range r.Goals[goalGetVsBare:] {
		rows = append(rows, []string{g.Name, g.Target, dash(g.Measured), g.Status, g.Note})
	}
	table(w, rows, "llrll")
}

// writeRatios writes the ratio table.
func (r *CRUDReport) writeRatios(w io.Writer) {
	if r.closedLoop() {
		fmt.Fprintln(w, "\nRatios, same run (closed loop: the throughput ratio is the measure)")
	} else {
		fmt.Fprintln(w, "\nRatios, same run (open loop: every phase is offered the same rate, so the latency ratios are the measure)")
	}
	rows := [][]string{{"phase", "base", "2xx/s ×base", "p50 ×base", "p99 ×base"}}
	for _, pr := range r.Ratios {
		rows = append(rows, []string{pr.Phase, pr.Base, fratio(float64(pr.Throughput)), fratio(float64(pr.P50)), fratio(float64(pr.P99))})
	}
	table(w, rows, "ll")
}
