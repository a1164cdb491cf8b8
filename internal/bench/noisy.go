package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// NoisyOptions configures bench noisy.
type NoisyOptions struct {
	Options
	// Modes are the aggressor's modes, each measured in its own phases
	// after one solo phase they share, in this order. Defaults to
	// ModeFlood alone.
	Modes []AggressorMode
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
	// VictimLoginRate is each victim's logins per second, as users of its
	// own, measured apart from its other requests in every phase when
	// ModeLoginFlood is among Modes. Defaults to 1.
	VictimLoginRate float64
	// AggressorPlan is the aggressor's plan in the isolated flood. Zero
	// fields default to rate 20/s, burst 20, max_inflight 8, weight 1. The
	// other modes put the aggressor on the server's default plan
	// (tenant.DefaultPlan) as the server has it.
	AggressorPlan tenant.Plan
	// AggressorRate is the flooding aggressor's arrival rate: 75% heavy
	// lists (limit 1000, a substring filter), 25% creates. Defaults to 50×
	// the plan's rate.
	AggressorRate float64
	// AggressorConns bounds the aggressor's requests in flight, each on a
	// connection of its own, in flood, slow-body and slow-read. Defaults
	// to 64.
	AggressorConns int
	// AggressorKeys is the API keys it rotates through, so that its
	// tenant's limit binds rather than a per-key one. Defaults to 8.
	AggressorKeys int
	// AggressorRecords is the records seeded for it in flood, slow-body
	// and slow-read, enough to fill its pages of 1000. Defaults to 1200.
	AggressorRecords int
	// SlowBodySize is the Content-Length a slow-body request declares.
	// Defaults to 64 KiB, within the server's 1 MiB body limit.
	SlowBodySize int
	// SlowBodyRate is the bytes of body a slow-body connection sends a
	// second. Defaults to 4.
	SlowBodyRate int
	// SlowReadBuffer is the receive buffer of a slow-read connection, in
	// bytes. Defaults to 1024.
	SlowReadBuffer int
	// SlowReadLimit is the page size slow-read asks for. Defaults to 1000.
	SlowReadLimit int
	// SlowReadRecordSize, if positive, has slow-read ask for a collection
	// of its own holding SlowReadLimit records of about this many bytes,
	// instead of its ordinary records (about 200 bytes each): answers
	// larger than the socket buffers between it and the server, so that
	// the server's write of them blocks.
	SlowReadRecordSize int
	// LoginClients is the clients of the login flood, each with one login
	// in flight. Defaults to 256.
	LoginClients int
	// RotateRecords is the records of the aggressor's collection with two
	// encrypted fields in ModeRotate, enough that re-encrypting them takes
	// longer than a phase. Defaults to 20,000.
	RotateRecords int
	// ExportRecords is the records the aggressor's exports read in
	// ModeExport. Defaults to 20,000.
	ExportRecords int
}

// setDefaults fills in the zero fields of o.
func (o *NoisyOptions) setDefaults() {
	if len(o.Modes) == 0 {
		o.Modes = []AggressorMode{ModeFlood}
	}
	o.Victims = orInt(o.Victims, 4)
	o.VictimRate = orFloat(o.VictimRate, 20)
	o.VictimConns = orInt(o.VictimConns, 64)
	o.VictimRecords = orInt(o.VictimRecords, 200)
	o.VictimLoginRate = orFloat(o.VictimLoginRate, 1)
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
	o.SlowBodySize = orInt(o.SlowBodySize, 64<<10)
	o.SlowBodyRate = orInt(o.SlowBodyRate, 4)
	o.SlowReadBuffer = orInt(o.SlowReadBuffer, 1024)
	o.SlowReadLimit = orInt(o.SlowReadLimit, 1000)
	o.LoginClients = orInt(o.LoginClients, 256)
	o.RotateRecords = orInt(o.RotateRecords, 20_000)
	o.ExportRecords = orInt(o.ExportRecords, 20_000)
}

func (o *NoisyOptions) has(m AggressorMode) bool { return slices.Contains(o.Modes, m) }

// loginSpacing is how often each victim user logs in at most, under the
// server's limit on logins to one address (a burst of 5, then one every
// 5 s): a victim logging in at rate r has ceil(r × 8 s) users.
const loginSpacing = 8 * time.Second

func loginUsers(rate float64) int { return max(1, int(math.Ceil(rate*loginSpacing.Seconds()))) }

// NoisySettings are the settings a NoisyReport was made with: the options
// after defaults, durations in seconds, the request mixes and the queries.
// Fields of modes that did not run are left out.
type NoisySettings struct {
	Modes            []AggressorMode `json:"modes"`
	DurationSec      float64         `json:"duration_s"`
	TimeoutSec       float64         `json:"timeout_s"`
	Victims          int             `json:"victims"`
	VictimRate       float64         `json:"victim_rate_per_s"`
	VictimConns      int             `json:"victim_conns"`
	VictimMix        string          `json:"victim_mix"`
	AggressorRate    float64         `json:"aggressor_rate_per_s"`
	AggressorConns   int             `json:"aggressor_conns"`
	AggressorKeys    int             `json:"aggressor_keys"`
	AggressorMix     string          `json:"aggressor_mix"`
	AggressorRecords int             `json:"aggressor_records"`
	LightQuery       string          `json:"light_list_query"`
	HeavyQuery       string          `json:"heavy_list_query"`
	// DefaultPlan is the plan of the aggressor in slow-body and slow-read.
	DefaultPlan        string  `json:"default_plan,omitempty"`
	SlowBodySize       int     `json:"slow_body_size,omitempty"`
	SlowBodyRate       int     `json:"slow_body_bytes_per_s,omitempty"`
	SlowReadPath       string  `json:"slow_read_path,omitempty"`
	SlowReadBuffer     int     `json:"slow_read_buffer,omitempty"`
	SlowReadRecordSize int     `json:"slow_read_record_size,omitempty"`
	LoginClients       int     `json:"login_clients,omitempty"`
	RotateRecords      int     `json:"rotate_records,omitempty"`
	RotateCollection   string  `json:"rotate_collection,omitempty"`
	ExportRecords      int     `json:"export_records,omitempty"`
	VictimLoginRate    float64 `json:"victim_login_rate_per_s,omitempty"`
	VictimLoginUsers   int     `json:"victim_login_users,omitempty"`
}

// VictimsReport is the victims' outcome in one phase.
type VictimsReport struct {
	// All merges every victim; PerVictim keeps them apart.
	All       StreamReport   `json:"all"`
	PerVictim []StreamReport `json:"per_victim"`
}

// FloodReport is one phase beside the aggressor in one mode: the victims
// and the aggressor, side by side.
type FloodReport struct {
	Name string `json:"name"`
	// Mode is the aggressor's mode; AggressorPlan is its plan, empty
	// when it is no tenant (login-flood).
	Mode          AggressorMode `json:"mode"`
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
	// VictimLogins are the victims' logins, when measured (login-flood
	// among the modes), with their quantiles over the solo phase's and
	// their non-2xx outcomes.
	VictimLogins        *VictimsReport `json:"victim_logins,omitempty"`
	VictimLoginP50Ratio float64        `json:"victim_login_p50_ratio,omitempty"`
	VictimLoginP99Ratio float64        `json:"victim_login_p99_ratio,omitempty"`
	VictimLoginErrors   int64          `json:"victim_login_errors,omitempty"`
	// For the flood only: AdmittedRate is the aggressor's 2xx per second
	// over the window; AdmittedSteadyRate leaves out the first second,
	// where a burst allowance is spent. AdmittedRatio is the steady rate
	// over PlanRate.
	AdmittedRate       float64 `json:"admitted_rate_per_s"`
	AdmittedSteadyRate float64 `json:"admitted_steady_rate_per_s"`
	PlanRate           float64 `json:"plan_rate_per_s"`
	AdmittedRatio      float64 `json:"admitted_ratio"`
	// Rotate is the rotate mode's re-encryption; nil in the other modes.
	Rotate *RotateReport `json:"rotate,omitempty"`
	// Export is the export mode's exports; nil in the other modes.
	Export *ExportReport `json:"export,omitempty"`
}

// NoisyReport is the outcome of bench noisy: the victims alone (Solo),
// then beside the aggressor in each mode (the flood twice: isolated, with
// the aggressor on its plan, and unlimited), and the goals.
type NoisyReport struct {
	Bench    string        `json:"bench"`
	Target   TargetInfo    `json:"target"`
	Settings NoisySettings `json:"settings"`
	// Plans are the plans used, as put on the server or found there.
	Plans []tenant.Plan `json:"plans"`
	Solo  VictimsReport `json:"solo"`
	// SoloLogins are the victims' logins in the solo phase, when measured.
	SoloLogins *VictimsReport `json:"solo_logins,omitempty"`
	Runs       []*FloodReport `json:"floods"`
	Goals      []Goal         `json:"goals"`
	// ModeGoals are, for each phase with the aggressor under the server's
	// limits, the victims' p99 over the solo phase's (at most 1.25×) and
	// their errors (none), and the same for their logins when measured.
	ModeGoals []Goal `json:"mode_goals"`
}

// largeCollection is the aggressor's collection of large records, when
// slow-read asks for them.
const largeCollection = "large"

// RunNoisy measures victim tenants alone, then beside an aggressor in each
// of o.Modes: for the flood, far over its plan (isolated), then on an
// unlimited plan (what no isolation looks like). It returns an error only
// when the target cannot be set up.
func RunNoisy(ctx context.Context, o NoisyOptions) (*NoisyReport, error) {
	o.setDefaults()
	ap := &o.AggressorPlan
	victimPlan := tenant.Plan{Name: planVictim, RatePerSec: 100, Burst: 200, MaxInflight: 32, Weight: 4,
		MaxRecords: 1 << 40, MaxBytes: 1 << 50}
	needAgg := slices.ContainsFunc(o.Modes, AggressorMode.needsTenant)
	slow := o.has(ModeSlowBody) || o.has(ModeSlowRead)
	// Every mode with an aggressor tenant but the flood puts it on the
	// server's default plan.
	onDefault := slow || o.has(ModeRotate) || o.has(ModeExport)
	logins := o.has(ModeLoginFlood)

	e, err := open(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer e.close()
	d := e.opts.Duration
	rep := &NoisyReport{Bench: "noisy", Target: e.info(), Goals: goals(), Plans: []tenant.Plan{victimPlan}, Settings: NoisySettings{
		Modes: o.Modes, DurationSec: d.Seconds(), TimeoutSec: e.opts.Timeout.Seconds(),
		Victims: o.Victims, VictimRate: o.VictimRate, VictimConns: o.VictimConns,
		VictimMix:     "60% get by id, 30% light list, 10% create",
		AggressorRate: o.AggressorRate, AggressorConns: o.AggressorConns, AggressorKeys: o.AggressorKeys,
		AggressorMix:     "75% heavy list, 25% create",
		AggressorRecords: o.AggressorRecords, LightQuery: lightQuery, HeavyQuery: heavyQuery,
	}}
	s := &rep.Settings
	if o.has(ModeFlood) {
		rep.Plans = append(rep.Plans, *ap)
	}
	rep.Plans = append(rep.Plans, unlimitedPlan())
	if o.has(ModeSlowBody) {
		s.SlowBodySize, s.SlowBodyRate = o.SlowBodySize, o.SlowBodyRate
	}
	slowReadColl := collection
	if o.SlowReadRecordSize > 0 {
		slowReadColl = largeCollection
	}
	if o.has(ModeSlowRead) {
		s.SlowReadBuffer, s.SlowReadRecordSize = o.SlowReadBuffer, o.SlowReadRecordSize
		s.SlowReadPath = fmt.Sprintf("…/collections/%s/records?limit=%d", slowReadColl, o.SlowReadLimit)
	}
	if logins {
		s.LoginClients, s.VictimLoginRate, s.VictimLoginUsers = o.LoginClients, o.VictimLoginRate, loginUsers(o.VictimLoginRate)
	}
	if o.has(ModeExport) {
		s.ExportRecords = o.ExportRecords
	}
	if o.has(ModeRotate) {
		s.RotateRecords = o.RotateRecords
		s.RotateCollection = fmt.Sprintf("%s, encrypted_fields %s", rotateCollection, strings.Join(rotateFields, ", "))
	}

	// Set up: every tenant starts on the unlimited plan so that seeding is
	// not throttled; the aggressor moves to its plan before measuring.
	names := make([]string, len(rep.Plans))
	for i, p := range rep.Plans {
		names[i] = p.Name
	}
	e.p.Stepf("putting plans %s", strings.Join(names, ", "))
	for _, p := range rep.Plans {
		if err := e.setup.putPlan(ctx, p); err != nil {
			return nil, err
		}
	}
	var defaultPlan tenant.Plan
	if onDefault {
		if defaultPlan, err = e.setup.getPlan(ctx, tenant.DefaultPlan); err != nil {
			return nil, err
		}
		rep.Plans = append(rep.Plans, defaultPlan)
		s.DefaultPlan = defaultPlan.Name
	}
	e.p.Stepf("creating %d victims (%d records each)", o.Victims, o.VictimRecords)
	victims := make([]*tenantFixture, o.Victims)
	password := "bench-" + randomWord(20)
	for i := range victims {
		f, err := e.setup.newTenant(ctx, e.setup.slug("victim", i), planUnlimited, 1)
		if err != nil {
			return nil, err
		}
		if err := e.setup.seed(ctx, f, o.VictimRecords); err != nil {
			return nil, err
		}
		for j := range s.VictimLoginUsers {
			email := fmt.Sprintf("bench-user-%d@example.com", j)
			if err := e.setup.createUser(ctx, f, email, password); err != nil {
				return nil, err
			}
			f.users = append(f.users, email)
		}
		if err := e.setup.setPlan(ctx, f.Slug, planVictim); err != nil {
			return nil, err
		}
		victims[i] = f
	}
	var agg *tenantFixture
	if needAgg {
		if !o.has(ModeFlood) && !slow {
			s.AggressorRecords = 0 // none seeded: no mode reads them
		}
		e.p.Stepf("creating the aggressor (%d keys, %d records)", o.AggressorKeys, s.AggressorRecords)
		if agg, err = e.setup.newTenant(ctx, e.setup.slug("aggressor", 0), planUnlimited, o.AggressorKeys); err != nil {
			return nil, err
		}
		if o.has(ModeFlood) || slow {
			if err := e.setup.seed(ctx, agg, o.AggressorRecords); err != nil {
				return nil, err
			}
		}
		if o.has(ModeSlowRead) && o.SlowReadRecordSize > 0 {
			e.p.Stepf("creating the aggressor's %d records of %s to read slowly", o.SlowReadLimit, fbytes(float64(o.SlowReadRecordSize)))
			if err := e.setup.putCollection(ctx, agg, largeCollection); err != nil {
				return nil, err
			}
			body := func(n int64) []byte { return largeRecordBody(n, o.SlowReadRecordSize) }
			if err := e.setup.seedCollection(ctx, agg, largeCollection, o.SlowReadLimit, body, false, nil); err != nil {
				return nil, err
			}
		}
	}

	var rot *rotator
	if o.has(ModeRotate) {
		if rot, err = e.seedRotate(ctx, agg, o.RotateRecords); err != nil {
			return nil, err
		}
	}
	var exp *exporter
	if o.has(ModeExport) {
		if exp, err = e.seedExport(ctx, agg, o.ExportRecords); err != nil {
			return nil, err
		}
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
	var loginStreams []*Stream
	if logins {
		for i, f := range victims {
			c := newClient(e.target, o.VictimConns)
			defer c.close()
			loginStreams = append(loginStreams, &Stream{Name: f.Slug + " logins", Rate: o.VictimLoginRate, Workers: o.VictimConns,
				SendFunc: func(ctx context.Context, seq int64) (int, error) {
					// Each victim user logs in from an address of their own.
					u := seq % int64(len(f.users))
					return c.login(ctx, f.Slug, f.users[u], password, fmt.Sprintf("10.1.%d.%d", i%250, u%250+1))
				}})
		}
	}

	// The aggressor's plan is switched only when a mode needs another one.
	onPlan := ""
	usePlan := func(plan string) error {
		if agg == nil || plan == onPlan {
			return nil
		}
		onPlan = plan
		return e.switchPlan(ctx, agg.Slug, plan)
	}
	planFor := func(m AggressorMode) string {
		if m == ModeFlood {
			return planAggressor
		}
		return defaultPlan.Name
	}
	if needAgg {
		first := o.Modes[slices.IndexFunc(o.Modes, AggressorMode.needsTenant)]
		if err := usePlan(planFor(first)); err != nil {
			return nil, err
		}
	}
	victimsAndLogins := slices.Concat(victimStreams, loginStreams)
	e.phase(ctx, "noisy/warm-up", time.Second, victimsAndLogins...)
	solo := e.phase(ctx, "noisy/solo", d, victimsAndLogins...)
	rep.Solo = victimsReport(solo[:len(victims)])
	if logins {
		l := victimsReport(solo[len(victims):])
		rep.SoloLogins = &l
	}

	// run measures the victims beside the aggressor stream agg.
	run := func(name string, mode AggressorMode, plan string, aggStream *Stream) *FloodReport {
		res := e.phase(ctx, "noisy/"+name, d, append(victimsAndLogins[:len(victimsAndLogins):len(victimsAndLogins)], aggStream)...)
		fr := &FloodReport{Name: name, Mode: mode, AggressorPlan: plan}
		fr.Victims = victimsReport(res[:len(victims)])
		if logins {
			l := victimsReport(res[len(victims) : len(res)-1])
			fr.VictimLogins = &l
		}
		fr.Aggressor = summarize(res[len(res)-1])
		fr.compare(rep.Solo, rep.SoloLogins)
		rep.Runs = append(rep.Runs, fr)
		return fr
	}
	for _, mode := range o.Modes {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := usePlan(planFor(mode)); err != nil {
			return nil, err
		}
		switch mode {
		case ModeFlood:
			ac := newClient(e.target, o.AggressorConns)
			defer ac.close()
			// The aggressor is coarse: spinning for its send times would
			// take the processor from the server it floods, and its
			// latency is not measured against a goal except the 429s',
			// which count from their send.
			aggStream := &Stream{Name: agg.Slug, Rate: o.AggressorRate, Workers: o.AggressorConns, Coarse: true,
				SendFunc: func(ctx context.Context, seq int64) (int, error) {
					key := agg.key(seq)
					if seq%4 == 3 {
						return ac.create(ctx, agg, key, 1_000_000+seq)
					}
					return ac.list(ctx, agg, key, heavyQuery)
				}}
			for _, plan := range []tenant.Plan{*ap, unlimitedPlan()} {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				name := "flood-isolated"
				if plan.Name == planUnlimited {
					name = "flood-unlimited"
					if err := usePlan(plan.Name); err != nil {
						return nil, err
					}
				}
				fr := run(name, mode, plan.Name, aggStream)
				fr.PlanRate = plan.RatePerSec
				fr.AdmittedRate = fr.Aggressor.Throughput
				fr.AdmittedSteadyRate = steadyRate(fr.Aggressor.Result, d)
				fr.AdmittedRatio = ratio(fr.AdmittedSteadyRate, plan.RatePerSec)
			}
		case ModeSlowBody:
			rd, err := newRawDialer(e.target.URL, 0)
			if err != nil {
				return nil, err
			}
			sb := &slowBody{d: rd, f: agg, size: o.SlowBodySize, rate: o.SlowBodyRate}
			run(string(mode), mode, onPlan, &Stream{Name: agg.Slug, Workers: o.AggressorConns,
				Timeout: time.Hour, StopAtEnd: true, SendFunc: sb.send})
		case ModeSlowRead:
			rd, err := newRawDialer(e.target.URL, o.SlowReadBuffer)
			if err != nil {
				return nil, err
			}
			sr := &slowRead{d: rd, f: agg, path: collectionRecordsPath(agg.Slug, slowReadColl) + fmt.Sprintf("?limit=%d", o.SlowReadLimit)}
			run(string(mode), mode, onPlan, &Stream{Name: agg.Slug, Workers: o.AggressorConns,
				Timeout: time.Hour, StopAtEnd: true, SendFunc: sr.send})
		case ModeRotate:
			fr := run(string(mode), mode, onPlan, &Stream{Name: agg.Slug + " rotations", Workers: 1,
				Timeout: time.Hour, StopAtEnd: true, SendFunc: rot.send})
			fr.Rotate = rot.report()
			e.p.Stepf("waiting for the rotation cut at the end of the phase to finish")
			if err := rot.waitIdle(ctx, 10*time.Minute); err != nil {
				return nil, err
			}
		case ModeExport:
			fr := run(string(mode), mode, onPlan, &Stream{Name: agg.Slug + " exports", Workers: 1,
				Timeout: time.Hour, StopAtEnd: true, SendFunc: exp.send})
			fr.Export = exp.report()
			e.p.Stepf("waiting for the export cut at the end of the phase to finish")
			if err := exp.waitIdle(ctx, 10*time.Minute); err != nil {
				return nil, err
			}
		case ModeLoginFlood:
			lc := newClient(e.target, o.LoginClients)
			defer lc.close()
			run(string(mode), mode, "", &Stream{Name: "login-flood", Workers: o.LoginClients, StopAtEnd: true,
				SendFunc: func(ctx context.Context, seq int64) (int, error) {
					// Each flooding client from an address of its own: a
					// botnet, which the per-address limit does not stop.
					n := seq % int64(o.LoginClients)
					addr := fmt.Sprintf("10.2.%d.%d", n/250, n%250+1)
					return lc.login(ctx, randomSlug(), fmt.Sprintf("user-%d@example.com", seq%1000), "not-the-password", addr)
				}})
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.judge()
	return rep, nil
}

// compare fills in fr's ratios to the solo phase and its victims' errors.
func (fr *FloodReport) compare(solo VictimsReport, soloLogins *VictimsReport) {
	fr.VictimP50Ratio = ratio(fr.Victims.All.Latency.P50Ms, solo.All.Latency.P50Ms)
	fr.VictimP99Ratio = ratio(fr.Victims.All.Latency.P99Ms, solo.All.Latency.P99Ms)
	for i, v := range fr.Victims.PerVictim {
		fr.WorstVictimP99Ratio = max(fr.WorstVictimP99Ratio, ratio(v.Latency.P99Ms, solo.PerVictim[i].Latency.P99Ms))
	}
	fr.VictimErrors = fr.Victims.All.Errors()
	if fr.VictimLogins != nil && soloLogins != nil {
		fr.VictimLoginP50Ratio = ratio(fr.VictimLogins.All.Latency.P50Ms, soloLogins.All.Latency.P50Ms)
		fr.VictimLoginP99Ratio = ratio(fr.VictimLogins.All.Latency.P99Ms, soloLogins.All.Latency.P99Ms)
		fr.VictimLoginErrors = fr.VictimLogins.All.Errors()
	}
}

// judge fills in the goals: those of the flood from the isolated flood,
// and the victims' goals of every phase with the aggressor under the
// server's limits.
func (r *NoisyReport) judge() {
	r.ModeGoals = modeGoals(r.Runs)
	i := slices.IndexFunc(r.Runs, func(f *FloodReport) bool { return f.Mode == ModeFlood })
	if i < 0 {
		for _, g := range []int{goalVictimP99, goalAdmitted, goal429} {
			r.Goals[g].Note = "measured by bench noisy --aggressor flood"
		}
		return
	}
	iso := r.Runs[i]
	r.Goals[goalVictimP99].judge(iso.VictimP99Ratio, 0, 1.25, "%.2f×")
	r.Goals[goalAdmitted].judge(iso.AdmittedRatio, 0.9, 1.1, "%.2f×")
	g := &r.Goals[goalAdmitted]
	g.Measured = fmt.Sprintf("%.1f/s of %g/s (%.2f×)", iso.AdmittedSteadyRate, iso.PlanRate, iso.AdmittedRatio)
	if g.Status == "missed" && !math.IsNaN(iso.AdmittedRatio) {
		side := "over"
		if iso.AdmittedRatio < 1 {
			side = "under"
		}
		g.Note = fmt.Sprintf("admitted %.0f%% %s the plan rate", math.Abs(iso.AdmittedRatio-1)*100, side)
	}
	if iso.Aggressor.Limited == 0 {
		r.Goals[goal429].Status = "missed"
		r.Goals[goal429].Note = "no 429 answers: the server did not rate-limit the aggressor"
	} else {
		g := &r.Goals[goal429]
		g.judge(iso.Aggressor.LimitedServiceLatency.P99Ms, 0, 1, "%.2f ms")
		g.addNote(fmt.Sprintf("from the send; %.2f ms from the scheduled time", iso.Aggressor.LimitedLatency.P99Ms))
	}
}

// modeGoals judges, for each run but the unlimited flood (the reference
// without isolation), the victims' p99 over the solo phase's (≤ 1.25×)
// and their errors (none), and the same for their logins when measured.
func modeGoals(runs []*FloodReport) []Goal {
	var gs []Goal
	for _, f := range runs {
		if f.AggressorPlan == planUnlimited {
			continue
		}
		p99 := Goal{Name: fmt.Sprintf("victims' p99, %s / solo", f.Name), Target: "≤ 1.25×"}
		p99.judge(f.VictimP99Ratio, 0, 1.25, "%.2f×")
		p99.addNote(fmt.Sprintf("p50 %s", fratio(f.VictimP50Ratio)))
		errs := Goal{Name: "victims' errors beside " + f.Name, Target: "0"}
		errs.judgeNone(f.VictimErrors, errorsText(f.Victims.All.Result))
		gs = append(gs, p99, errs)
		if f.VictimLogins == nil {
			continue
		}
		p99 = Goal{Name: fmt.Sprintf("victims' logins p99, %s / solo", f.Name), Target: "≤ 1.25×"}
		p99.judge(f.VictimLoginP99Ratio, 0, 1.25, "%.2f×")
		p99.addNote(fmt.Sprintf("p99 %s, p50 %s", fms(f.VictimLogins.All.Latency.P99Ms), fratio(f.VictimLoginP50Ratio)))
		errs = Goal{Name: "victims' login errors beside " + f.Name, Target: "0"}
		errs.judgeNone(f.VictimLoginErrors, errorsText(f.VictimLogins.All.Result))
		gs = append(gs, p99, errs)
	}
	return gs
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
	for _, m := range s.Modes {
		switch m {
		case ModeFlood:
			fmt.Fprintf(w, "aggressor: %s offered (%s) over %d connections and %d API keys\n",
				frate(s.AggressorRate), s.AggressorMix, s.AggressorConns, s.AggressorKeys)
		case ModeSlowBody:
			fmt.Fprintf(w, "slow-body: the aggressor, on plan %s, holds %d connections, each a POST of a record that declares\n"+
				"  %s of body, sends %d B/s of it and never ends it; a new one as soon as the server answers or closes\n",
				s.DefaultPlan, s.AggressorConns, fbytes(float64(s.SlowBodySize)), s.SlowBodyRate)
		case ModeSlowRead:
			fmt.Fprintf(w, "slow-read: the aggressor, on plan %s, sends GET %s on %d connections with a %s receive\n"+
				"  buffer and reads nothing of an admitted answer after its head; after a refusal it waits Retry-After\n"+
				"  (at most 1 s) and asks again\n",
				s.DefaultPlan, s.SlowReadPath, s.AggressorConns, fbytes(float64(s.SlowReadBuffer)))
			if s.SlowReadRecordSize > 0 {
				fmt.Fprintf(w, "  (its own collection of records of %s each)\n", fbytes(float64(s.SlowReadRecordSize)))
			}
		case ModeLoginFlood:
			fmt.Fprintf(w, "login-flood: %d clients without credentials post logins to random slugs that name no tenant, back to back\n",
				s.LoginClients)
		case ModeExport:
			fmt.Fprintf(w, "export: the aggressor, on plan %s, has %s records in a collection; a tenant admin exports\n"+
				"  the tenant, and again as soon as each export ends\n", s.DefaultPlan, fint(int64(s.ExportRecords)))
		case ModeRotate:
			fmt.Fprintf(w, "rotate: the aggressor, on plan %s, has %s records in a collection (%s); the operator rotates\n"+
				"  its data key, and again as soon as each rotation's re-encryption ends\n",
				s.DefaultPlan, fint(int64(s.RotateRecords)), s.RotateCollection)
		}
	}
	if r.SoloLogins != nil {
		fmt.Fprintf(w, "victim logins, in every phase: %s per victim, in turn as %d users of its own\n",
			frate(s.VictimLoginRate), s.VictimLoginUsers)
	}
	writeTarget(w, r.Target)
	fmt.Fprintf(w, "light list = …/records%s\nheavy list = …/records%s\n", s.LightQuery, s.HeavyQuery)

	fmt.Fprintln(w, "\nPlans")
	rows := [][]string{{"plan", "rate_per_sec", "burst", "max_inflight", "weight"}}
	for _, p := range r.Plans {
		rows = append(rows, []string{p.Name, fmt.Sprintf("%g", p.RatePerSec), fint(int64(p.Burst)), fint(int64(p.MaxInflight)), fmt.Sprint(p.Weight)})
	}
	table(w, rows, "l")

	fmt.Fprintln(w, "\nVictims (all victims merged; latency from the scheduled send time)")
	victimsTable(w, r.Solo, r.Runs, func(f *FloodReport) (*VictimsReport, float64, float64) {
		return &f.Victims, f.VictimP50Ratio, f.VictimP99Ratio
	})
	if r.SoloLogins != nil {
		fmt.Fprintln(w, "\nVictims' logins (all victims merged; latency from the scheduled send time)")
		victimsTable(w, *r.SoloLogins, r.Runs, func(f *FloodReport) (*VictimsReport, float64, float64) {
			return f.VictimLogins, f.VictimLoginP50Ratio, f.VictimLoginP99Ratio
		})
	}

	var floods, others []*FloodReport
	for _, f := range r.Runs {
		if f.Mode == ModeFlood {
			floods = append(floods, f)
		} else if f.Mode != ModeRotate && f.Mode != ModeExport {
			others = append(others, f)
		}
	}
	if len(floods) > 0 {
		fmt.Fprintln(w, "\nAggressor")
		rows = [][]string{{"phase", "plan rate", "offered", "sent", "late", "unsent", "admitted 2xx/s", "steady 2xx/s", "×plan", "429", "503", "other errors", "429 p50", "429 p99", "429 p99 from send", "2xx p99"}}
		for _, f := range floods {
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
	}
	if len(others) > 0 {
		fmt.Fprintln(w, "\nAggressor, other modes (each request on a connection of its own, sent again as soon as it ends)")
		rows = [][]string{{"phase", "plan", "connections", "sent", "answers by status", "closed unanswered", "cut at end", "other errors", "p50", "p99", "max"}}
		for _, f := range others {
			a := f.Aggressor
			other := a.TransportErrors - a.Closed - a.Cut
			conns := s.AggressorConns
			if f.Mode == ModeLoginFlood {
				conns = s.LoginClients
			}
			rows = append(rows, []string{f.Name, dash(f.AggressorPlan), fint(int64(conns)), fint(a.Sent), statusesText(a.Statuses), fint(a.Closed), fint(a.Cut),
				fint(other), fms(a.Latency.P50Ms), fms(a.Latency.P99Ms), fms(a.Latency.MaxMs)})
		}
		table(w, rows, "ll")
		fmt.Fprintln(w, "Latency here is how long each request lasted from its send: for the slow modes, how long the server let")
		fmt.Fprintln(w, "the connection be held. An admitted slow read counts as its status, 200, when the server closes it or the")
		fmt.Fprintln(w, "window ends.")
		fmt.Fprintln(w, "cut at end = still without an answer when the window ended, closed by the generator.")
	}
	writeRotate(w, r.Runs)
	writeExport(w, r.Runs)
	for _, f := range r.Runs {
		if (f.Mode == ModeRotate || f.Mode == ModeExport) && f.Aggressor.TransportErrors == f.Aggressor.Cut {
			continue // the rotation or export in progress at the end, cut: expected
		}
		if f.Aggressor.FirstError != "" {
			fmt.Fprintf(w, "%s: first aggressor transport error: %s\n", f.Name, f.Aggressor.FirstError)
		}
	}
	writeGoals(w, r.Goals)
	if len(r.ModeGoals) > 0 {
		fmt.Fprintln(w, "\nVictims' goals in each mode (reported, not asserted)")
		rows = [][]string{{"goal", "target", "measured", "status", "note"}}
		for _, g := range r.ModeGoals {
			rows = append(rows, []string{g.Name, g.Target, dash(g.Measured), g.Status, g.Note})
		}
		table(w, rows, "llrll")
	}
}

// victimsTable writes the solo phase and, for each run, what pick gives:
// its victims and their p50 and p99 ratios to solo.
func victimsTable(w io.Writer, solo VictimsReport, runs []*FloodReport, pick func(*FloodReport) (*VictimsReport, float64, float64)) {
	rows := [][]string{{"phase", "aggressor plan", "sent", "errors", "p50", "p99", "p99.9", "max", "p50 ×solo", "p99 ×solo", "worst victim p99 ×solo"}}
	so := solo.All
	rows = append(rows, []string{"solo", "-", fint(so.Sent), errorsText(so.Result), fms(so.Latency.P50Ms), fms(so.Latency.P99Ms),
		fms(so.Latency.P999Ms), fms(so.Latency.MaxMs), "1.00×", "1.00×", "-"})
	for _, f := range runs {
		vr, p50, p99 := pick(f)
		if vr == nil {
			continue
		}
		worst := 0.0
		for i, v := range vr.PerVictim {
			worst = max(worst, ratio(v.Latency.P99Ms, solo.PerVictim[i].Latency.P99Ms))
		}
		v := vr.All
		rows = append(rows, []string{f.Name, dash(f.AggressorPlan), fint(v.Sent), errorsText(v.Result), fms(v.Latency.P50Ms), fms(v.Latency.P99Ms),
			fms(v.Latency.P999Ms), fms(v.Latency.MaxMs), fratio(p50), fratio(p99), fratio(worst)})
	}
	table(w, rows, "ll")
}

// statusesText lists answers by status code, in code order, or "none".
func statusesText(m map[int]int64) string {
	codes := slices.Sorted(maps.Keys(m))
	if len(codes) == 0 {
		return "none"
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d: %s", c, fint(m[c]))
	}
	return strings.Join(parts, ", ")
}
