package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNoisyOptionsDefaults(t *testing.T) {
	t.Parallel()
	var o NoisyOptions
	o.setDefaults()
	type defaults struct {
		Modes                                      []AggressorMode
		Victims, VictimConns, VictimRecords        int
		VictimRate, VictimLoginRate, AggressorRate float64
		AggressorConns, AggressorKeys              int
		SlowBodySize, SlowBodyRate                 int
		SlowReadBuffer, SlowReadLimit, SlowReadRec int
		LoginClients                               int
		PlanRate                                   float64
		PlanBurst, PlanInflight, PlanWeight        int
	}
	got := defaults{o.Modes, o.Victims, o.VictimConns, o.VictimRecords, o.VictimRate, o.VictimLoginRate, o.AggressorRate,
		o.AggressorConns, o.AggressorKeys, o.SlowBodySize, o.SlowBodyRate, o.SlowReadBuffer, o.SlowReadLimit, o.SlowReadRecordSize,
		o.LoginClients, o.AggressorPlan.RatePerSec, o.AggressorPlan.Burst, o.AggressorPlan.MaxInflight, o.AggressorPlan.Weight}
	want := defaults{[]AggressorMode{ModeFlood}, 4, 64, 200, 20, 1, 1000,
		64, 8, 64 << 10, 4, 1024, 1000, 0,
		256, 20, 20, 8, 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NoisyOptions defaults mismatch (-want +got):\n%s", diff)
	}
	if o.AggressorPlan.Name != planAggressor {
		t.Errorf("AggressorPlan.Name = %q, want %q", o.AggressorPlan.Name, planAggressor)
	}

	// Slow bodies are held at several times the default plan's in-flight
	// cap (4), and stay within the server's 1 MiB body limit.
	if o.AggressorConns < 4*4 || o.SlowBodySize >= 1<<20 {
		t.Errorf("slow-body: %d connections of %d bytes; want at least 16, under 1 MiB", o.AggressorConns, o.SlowBodySize)
	}

	if o.RotateRecords != 20_000 {
		t.Errorf("RotateRecords = %d, want 20,000", o.RotateRecords)
	}

	// Set fields stay.
	o = NoisyOptions{Modes: []AggressorMode{ModeSlowRead}, LoginClients: 10, AggressorRate: 5}
	o.setDefaults()
	if len(o.Modes) != 1 || o.Modes[0] != ModeSlowRead || o.LoginClients != 10 || o.AggressorRate != 5 {
		t.Errorf("setDefaults changed set fields: %+v", o)
	}
}

func TestLoginUsers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rate float64
		want int
	}{{1, 8}, {0.1, 1}, {0.01, 1}, {2, 16}, {0.5, 4}} {
		got := loginUsers(tt.rate)
		if got != tt.want {
			t.Errorf("loginUsers(%v) = %d, want %d", tt.rate, got, tt.want)
		}
		// Each user logs in at most once every 5 s, the server's
		// per-address login rate.
		if each := tt.rate / float64(got); each > 0.2 && got > 1 {
			t.Errorf("loginUsers(%v) = %d: %v logins/s per user, over 1 every 5 s", tt.rate, got, each)
		}
	}
}

// streamReport summarises a result of n requests, bad of them refused with
// 503, all with latency lat.
func streamReport(name string, n, bad int64, lat time.Duration) StreamReport {
	r := &Result{Name: name, DurationSec: 30, Scheduled: n, Sent: n, OK: n - bad, Shed: bad,
		Statuses: map[int]int64{200: n - bad, 503: bad}, OKPerSecond: []int64{n - bad},
		Latency: new(Histogram), OKLatency: new(Histogram), LimitedLatency: new(Histogram),
		SendLag: new(Histogram), LimitedServiceLatency: new(Histogram)}
	for range n {
		r.Latency.Record(lat)
	}
	return summarize(r)
}

func victims(n, bad int64, lat time.Duration) VictimsReport {
	v := streamReport("victim", n, bad, lat)
	return VictimsReport{All: v, PerVictim: []StreamReport{v}}
}

// noisyFixture is a report of every mode, as RunNoisy would make it:
// victims at 10 ms alone, their logins at 100 ms.
func noisyFixture() *NoisyReport {
	soloLogins := victims(30, 0, 100*time.Millisecond)
	rep := &NoisyReport{Bench: "noisy", Goals: goals(), Solo: victims(100, 0, 10*time.Millisecond), SoloLogins: &soloLogins,
		Settings: NoisySettings{Modes: AggressorModes, AggressorConns: 64, LoginClients: 256, DefaultPlan: "free"}}
	for _, r := range []struct {
		name   string
		mode   AggressorMode
		plan   string
		bad    int64
		lat    time.Duration
		logins time.Duration
	}{
		{"flood-isolated", ModeFlood, planAggressor, 0, 11 * time.Millisecond, 100 * time.Millisecond},
		{"flood-unlimited", ModeFlood, planUnlimited, 0, 500 * time.Millisecond, 100 * time.Millisecond},
		{"slow-body", ModeSlowBody, "free", 80, time.Second, 100 * time.Millisecond},
		{"slow-read", ModeSlowRead, "free", 0, 10 * time.Millisecond, 100 * time.Millisecond},
		{"login-flood", ModeLoginFlood, "", 0, 10 * time.Millisecond, 5 * time.Second},
	} {
		l := victims(30, 0, r.logins)
		fr := &FloodReport{Name: r.name, Mode: r.mode, AggressorPlan: r.plan, Victims: victims(100, r.bad, r.lat), VictimLogins: &l,
			Aggressor: streamReport("aggressor", 10, 0, time.Second)}
		fr.compare(rep.Solo, rep.SoloLogins)
		rep.Runs = append(rep.Runs, fr)
	}
	rep.Runs[0].PlanRate, rep.Runs[0].AdmittedSteadyRate, rep.Runs[0].AdmittedRatio = 20, 20, 1
	rep.judge()
	return rep
}

func TestModeGoals(t *testing.T) {
	t.Parallel()
	rep := noisyFixture()
	type row struct{ Name, Measured, Status string }
	var got []row
	for _, g := range rep.ModeGoals {
		got = append(got, row{g.Name, g.Measured, g.Status})
	}
	// Histogram quantiles are within 0.4%: 11 ms / 10 ms reads 1.10×.
	want := []row{
		{"victims' p99, flood-isolated / solo", "1.10×", "met"},
		{"victims' errors beside flood-isolated", "0", "met"},
		{"victims' logins p99, flood-isolated / solo", "1.00×", "met"},
		{"victims' login errors beside flood-isolated", "0", "met"},
		// No goals for the unlimited flood: it is the reference without isolation.
		{"victims' p99, slow-body / solo", "100.00×", "missed"},
		{"victims' errors beside slow-body", "80", "missed"},
		{"victims' logins p99, slow-body / solo", "1.00×", "met"},
		{"victims' login errors beside slow-body", "0", "met"},
		{"victims' p99, slow-read / solo", "1.00×", "met"},
		{"victims' errors beside slow-read", "0", "met"},
		{"victims' logins p99, slow-read / solo", "1.00×", "met"},
		{"victims' login errors beside slow-read", "0", "met"},
		{"victims' p99, login-flood / solo", "1.00×", "met"},
		{"victims' errors beside login-flood", "0", "met"},
		{"victims' logins p99, login-flood / solo", "50.00×", "missed"},
		{"victims' login errors beside login-flood", "0", "met"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ModeGoals mismatch (-want +got):\n%s", diff)
	}
	if g := rep.ModeGoals[5]; g.Note != "80 503" {
		t.Errorf("slow-body errors goal note = %q, want the errors listed", g.Note)
	}
	if g := rep.Goals[goalVictimP99]; g.Status != "met" || g.Measured != "1.10×" {
		t.Errorf("flood goal = %+v, want met at 1.10× (from flood-isolated)", g)
	}
}

func TestJudgeWithoutFlood(t *testing.T) {
	t.Parallel()
	rep := noisyFixture()
	rep.Runs = rep.Runs[2:]
	rep.Goals = goals()
	rep.judge()
	for _, i := range []int{goalVictimP99, goalAdmitted, goal429} {
		if g := rep.Goals[i]; g.Status != "not measured" || !strings.Contains(g.Note, "--aggressor flood") {
			t.Errorf("goal %q = %s (%s); want not measured, pointing to --aggressor flood", g.Name, g.Status, g.Note)
		}
	}
	if len(rep.ModeGoals) != 12 {
		t.Errorf("%d mode goals, want 12 (4 for each of 3 modes)", len(rep.ModeGoals))
	}
}

func TestGoalJudgeNone(t *testing.T) {
	t.Parallel()
	var g Goal
	g.judgeNone(0, "")
	if g.Status != "met" || g.Measured != "0" || g.Note != "" {
		t.Errorf("judgeNone(0) = %+v, want met", g)
	}
	g.judgeNone(1234, "1,234 503")
	if g.Status != "missed" || g.Measured != "1,234" || g.Note != "1,234 503" || *g.Value != 1234 {
		t.Errorf("judgeNone(1234) = %+v, want missed with the errors as note", g)
	}
	g.judge(math.NaN(), 0, 1.25, "%.2f×")
	if g.Status != "missed" || g.Value != nil {
		t.Errorf("judge(NaN) = %+v, want missed without a value (JSON has no NaN)", g)
	}
}

func TestNoisyReportOutput(t *testing.T) {
	t.Parallel()
	rep := noisyFixture()
	var b bytes.Buffer
	rep.WriteText(&b)
	for _, want := range []string{"slow-body: the aggressor, on plan free", "login-flood: 256 clients", "Victims' logins",
		"Aggressor, other modes", "Victims' goals in each mode", "victims' errors beside slow-body"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("the report does not marshal as JSON: %v", err)
	}

	// The flood alone prints no table of other modes nor of logins.
	rep.Runs, rep.SoloLogins, rep.Settings.Modes = rep.Runs[:2], nil, []AggressorMode{ModeFlood}
	for _, f := range rep.Runs {
		f.VictimLogins = nil
	}
	rep.Goals = goals()
	rep.judge()
	b.Reset()
	rep.WriteText(&b)
	for _, absent := range []string{"Aggressor, other modes", "Victims' logins", "slow-body"} {
		if strings.Contains(b.String(), absent) {
			t.Errorf("flood-only text report holds %q:\n%s", absent, b.String())
		}
	}
}
