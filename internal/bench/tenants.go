package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TenantsOptions configures bench tenants.
type TenantsOptions struct {
	Options
	// Counts are the tenant counts to measure at, ascending; each step
	// adds tenants to the previous ones. Defaults to 10, 1000, 100000.
	Counts []int
	// Rate is the arrival rate of the measured stream of gets, spread over
	// all tenants. Defaults to 200.
	Rate float64
	// Conns bounds the requests in flight while touching tenants and in
	// the measured stream. Defaults to 32.
	Conns int
	// ProvisionConns is how many tenants are created at once. Defaults
	// to 32.
	ProvisionConns int
}

// Memory is the in-process server's memory after a full garbage
// collection. The load generator shares the heap; TenantStep subtracts
// what it holds per tenant.
type Memory struct {
	HeapInuse uint64 `json:"heap_inuse_bytes"`
	HeapAlloc uint64 `json:"heap_alloc_bytes"`
	Sys       uint64 `json:"sys_bytes"`
	// RSS is the resident set size, which also holds SQLite's page cache
	// (allocated outside the Go heap); zero where unknown.
	RSS uint64 `json:"rss_bytes"`
}

// TenantStep is bench tenants at one tenant count, Tenants.
type TenantStep struct {
	Tenants int `json:"tenants"`
	// Created tenants in this step, in ProvisionSec, through ProvisionVia.
	Created       int     `json:"created"`
	ProvisionSec  float64 `json:"provision_s"`
	ProvisionRate float64 `json:"provision_tenants_per_s"`
	ProvisionVia  string  `json:"provision_via"`
	// TouchSec is the time to send one request to every tenant, so that
	// each has its per-tenant state (caches, limiter) before measuring.
	TouchSec    float64 `json:"touch_s"`
	TouchErrors int64   `json:"touch_errors"`
	// Memory is measured after the touch (in process only); HeapPerTenant
	// is HeapInuse over the baseline, less the generator's own per-tenant
	// bytes (ClientBytes), per tenant. RSSPerTenant is the same for RSS,
	// without that correction.
	Memory        *Memory `json:"memory,omitempty"`
	ClientBytes   int64   `json:"client_bytes,omitempty"`
	HeapPerTenant float64 `json:"heap_bytes_per_tenant,omitempty"`
	RSSPerTenant  float64 `json:"rss_bytes_per_tenant,omitempty"`
	// Stream is the measured gets by id, spread over every tenant: with
	// more tenants than the rate reaches within the server's cache
	// lifetime, each request finds its tenant and key uncached.
	Stream StreamReport `json:"stream"`
	// Ratios to the first step (the fewest tenants).
	P50Ratio float64 `json:"p50_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
	// Hot is the same rate of gets over hotTenants tenants only, the rest
	// idle: what the presence of many tenants costs an active one, cache
	// hits included. HotP50Ratio and HotP99Ratio compare it with the
	// first step's Hot.
	Hot         StreamReport `json:"hot_stream"`
	HotP50Ratio float64      `json:"hot_p50_ratio"`
	HotP99Ratio float64      `json:"hot_p99_ratio"`
}

// hotTenants is how many tenants the Hot stream of each step loads.
const hotTenants = 10

// TenantsSettings are the settings a TenantsReport was made with: the
// options after defaults, durations in seconds.
type TenantsSettings struct {
	Counts         []int   `json:"counts"`
	Rate           float64 `json:"rate_per_s"`
	DurationSec    float64 `json:"duration_s"`
	TimeoutSec     float64 `json:"timeout_s"`
	Conns          int     `json:"conns"`
	ProvisionConns int     `json:"provision_conns"`
}

// TenantsReport is the outcome of bench tenants: one TenantStep per tenant
// count, the server's memory before any bench tenant (Baseline, in process
// only), and the goals.
type TenantsReport struct {
	Bench    string          `json:"bench"`
	Target   TargetInfo      `json:"target"`
	Settings TenantsSettings `json:"settings"`
	// MemoryNote says how memory was measured, or why it was not.
	MemoryNote string        `json:"memory_note"`
	Baseline   *Memory       `json:"baseline_memory,omitempty"`
	Steps      []*TenantStep `json:"steps"`
	Goals      []Goal        `json:"goals"`
}

// RunTenants measures per-request latency and memory as the tenant count
// grows. In process it creates tenants through the library (fast enough
// for 100,000); against --url through the HTTP API, and without memory. It
// returns an error only when the target cannot be set up.
func RunTenants(ctx context.Context, o TenantsOptions) (*TenantsReport, error) {
	if len(o.Counts) == 0 {
		o.Counts = []int{10, 1000, 100000}
	}
	o.Counts = slices.Clone(o.Counts)
	slices.Sort(o.Counts)
	o.Counts = slices.Compact(o.Counts)
	if o.Counts[0] < 1 {
		return nil, fmt.Errorf("tenant counts must be at least 1, got %d", o.Counts[0])
	}
	o.Rate = orFloat(o.Rate, 200)
	o.Conns = orInt(o.Conns, 32)
	o.ProvisionConns = orInt(o.ProvisionConns, 32)
	e, err := open(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep := &TenantsReport{Bench: "tenants", Target: e.info(), Goals: goals(), Settings: TenantsSettings{
		Counts: o.Counts, Rate: o.Rate, DurationSec: e.opts.Duration.Seconds(), TimeoutSec: e.opts.Timeout.Seconds(),
		Conns: o.Conns, ProvisionConns: o.ProvisionConns,
	}}
	inProcess := e.target.App != nil
	if inProcess {
		rep.MemoryNote = "Go heap in use after a forced GC, over the baseline of the fresh server, less the bytes " +
			"the load generator keeps per tenant (its keys and record ids), per tenant; read " +
			idleWait.String() + " after the last request, once the tenants are idle (the server's 1 s caches " +
			"have expired and been swept); RSS also counts SQLite's page cache and the generator"
	} else {
		rep.MemoryNote = "not measured: the server runs in another process (--url), whose heap this client cannot " +
			"garbage-collect and read exactly; run without --url to measure memory"
	}
	if err := e.setup.putPlan(ctx, unlimitedPlan()); err != nil {
		return nil, err
	}
	if inProcess {
		m := readMemory()
		rep.Baseline = &m
	}

	tab := &tenantTable{}
	c := newClient(e.target, o.Conns)
	defer c.close()
	for _, n := range o.Counts {
		st := &TenantStep{Tenants: n, Created: n - tab.len()}
		e.p.Stepf("%s tenants: creating %s", fint(int64(n)), fint(int64(st.Created)))
		start := time.Now()
		stop := e.p.count("provisioning", n, tab.len)
		if inProcess {
			st.ProvisionVia = "the library (bulkhead.App.Core), in process"
			err = e.provision(ctx, tab, n, o.ProvisionConns, e.provisionCore)
		} else {
			st.ProvisionVia = "the HTTP API"
			err = e.provision(ctx, tab, n, o.ProvisionConns, e.provisionHTTP)
		}
		stop()
		if err != nil {
			return nil, err
		}
		st.ProvisionSec = time.Since(start).Seconds()
		st.ProvisionRate = float64(st.Created) / st.ProvisionSec

		e.p.Stepf("%s tenants: touching each once", fint(int64(n)))
		start = time.Now()
		st.TouchErrors = e.touch(ctx, c, tab, o.Conns)
		st.TouchSec = time.Since(start).Seconds()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if inProcess {
			c.close() // idle server connections would count as tenant memory
			time.Sleep(idleWait)
			m := readMemory()
			st.Memory = &m
			st.ClientBytes = tab.bytes()
			st.HeapPerTenant = (float64(m.HeapInuse) - float64(rep.Baseline.HeapInuse) - float64(st.ClientBytes)) / float64(n)
			st.RSSPerTenant = (float64(m.RSS) - float64(rep.Baseline.RSS)) / float64(n)
			if e.opts.HeapProfile != "" {
				if err := writeHeapProfile(e.opts.HeapProfile); err != nil {
					return nil, err
				}
			}
		}

		rows := tab.len()
		s := &Stream{Name: fmt.Sprintf("get@%d", n), Rate: o.Rate, Workers: o.Conns,
			SendFunc: func(ctx context.Context, seq int64) (int, error) {
				i, key, id := tab.row(int(mix(seq) % uint64(rows)))
				return c.send(ctx, "GET", recordsPath(e.setup.slug("t", i))+"/"+id, key, nil, nil)
			}}
		res := e.phase(ctx, fmt.Sprintf("tenants/%s", fint(int64(n))), e.opts.Duration, s)
		st.Stream = summarize(res[0])
		hot := min(rows, hotTenants)
		hs := &Stream{Name: fmt.Sprintf("hot@%d", n), Rate: o.Rate, Workers: o.Conns,
			SendFunc: func(ctx context.Context, seq int64) (int, error) {
				i, key, id := tab.row(int(mix(seq) % uint64(hot)))
				return c.send(ctx, "GET", recordsPath(e.setup.slug("t", i))+"/"+id, key, nil, nil)
			}}
		res = e.phase(ctx, fmt.Sprintf("tenants/%s, %d active", fint(int64(n)), hot), e.opts.Duration, hs)
		st.Hot = summarize(res[0])
		first := st
		if len(rep.Steps) > 0 {
			first = rep.Steps[0]
		}
		st.P50Ratio = ratio(st.Stream.Latency.P50Ms, first.Stream.Latency.P50Ms)
		st.P99Ratio = ratio(st.Stream.Latency.P99Ms, first.Stream.Latency.P99Ms)
		st.HotP50Ratio = ratio(st.Hot.Latency.P50Ms, first.Hot.Latency.P50Ms)
		st.HotP99Ratio = ratio(st.Hot.Latency.P99Ms, first.Hot.Latency.P99Ms)
		rep.Steps = append(rep.Steps, st)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}

	first, last := rep.Steps[0], rep.Steps[len(rep.Steps)-1]
	if len(rep.Steps) > 1 {
		g := &rep.Goals[goalTenantCost]
		g.judge(last.P50Ratio, 0, 1.1, "%.2f× (p50)")
		g.addNote(fmt.Sprintf("requests spread over every tenant; over %d active tenants among the rest idle: %.2f×",
			hotTenants, last.HotP50Ratio))
		if first.Tenants != 10 || last.Tenants != 100000 {
			g.addNote(fmt.Sprintf("measured at %s / %s tenants", fint(int64(last.Tenants)), fint(int64(first.Tenants))))
		}
	}
	if inProcess {
		g := &rep.Goals[goalTenantMemory]
		g.judge(last.HeapPerTenant/1024, 0, 2, "%.2f KiB")
		g.addNote(fmt.Sprintf("Go heap at %s tenants", fint(int64(last.Tenants))))
	} else {
		rep.Goals[goalTenantMemory].Note = rep.MemoryNote
	}
	return rep, nil
}

// provision creates tenants until tab has n, with conns at once.
func (e *env) provision(ctx context.Context, tab *tenantTable, n, conns int,
	create func(ctx context.Context, i int) (key, id string, err error)) error {
	next := atomic.Int64{}
	next.Store(int64(tab.len()))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				key, id, err := create(ctx, i)
				if err != nil {
					cancel(fmt.Errorf("create tenant %d: %w", i, err))
					return
				}
				tab.add(i, key, id)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// provisionCore creates tenant i, its API key, collection and one record
// through the library, as the command line does.
func (e *env) provisionCore(ctx context.Context, i int) (string, string, error) {
	c := e.target.App.Core()
	slug := tenant.Slug(e.setup.slug("t", i))
	ctl, err := c.Control(core.Operator(), "bench")
	if err != nil {
		return "", "", err
	}
	if _, err := ctl.CreateTenant(ctx, core.CreateTenantParams{Slug: slug, Name: string(slug), Plan: planUnlimited}, nil); err != nil {
		return "", "", err
	}
	op, err := c.Scope(ctx, core.Operator(), slug, "bench")
	if err != nil {
		return "", "", err
	}
	k, err := op.CreateAPIKey(ctx, core.CreateAPIKeyParams{Name: "bench", Role: tenant.Admin})
	if err != nil {
		return "", "", err
	}
	p, err := c.Authenticate(ctx, k.Key)
	if err != nil {
		return "", "", err
	}
	sc, err := c.Scope(ctx, p, slug, "bench")
	if err != nil {
		return "", "", err
	}
	if _, err := sc.PutCollection(ctx, collection, core.PutCollectionParams{}); err != nil {
		return "", "", err
	}
	rec, err := sc.CreateRecord(ctx, collection, recordBody(int64(i)), nil)
	if err != nil {
		return "", "", err
	}
	return k.Key, string(rec.ID), nil
}

// provisionHTTP creates the same through the HTTP API.
func (e *env) provisionHTTP(ctx context.Context, i int) (string, string, error) {
	slug := e.setup.slug("t", i)
	f, err := e.setup.newTenant(ctx, slug, planUnlimited, 1)
	if err != nil {
		return "", "", err
	}
	var rec struct{ ID string }
	if err := e.setup.api.do(ctx, "POST", recordsPath(slug), f.Keys[0], rawJSON(recordBody(int64(i))), &rec, 201); err != nil {
		return "", "", err
	}
	return f.Keys[0], rec.ID, nil
}

// touch sends one get to every tenant and returns the non-2xx count.
func (e *env) touch(ctx context.Context, c *client, tab *tenantTable, conns int) int64 {
	var next, bad atomic.Int64
	rows := tab.len()
	stop := e.p.count("touching", rows, func() int { return int(min(next.Load(), int64(rows))) })
	defer stop()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for r := int(next.Add(1) - 1); r < rows && ctx.Err() == nil; r = int(next.Add(1) - 1) {
				i, key, id := tab.row(r)
				rctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
				status, err := c.send(rctx, "GET", recordsPath(e.setup.slug("t", i))+"/"+id, key, nil, nil)
				cancel()
				if err != nil || status/100 != 2 {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return bad.Load()
}

// tenantTable holds the generator's per-tenant state compactly — one byte
// slab and three integers a tenant — so that its size is known exactly and
// can be taken out of the shared heap's growth.
type tenantTable struct {
	mu     sync.Mutex
	buf    []byte
	ends   []uint32 // per row: the end of its key, then of its record id
	tenant []uint32 // per row: the tenant's index
}

func (t *tenantTable) add(i int, key, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, key...)
	t.ends = append(t.ends, uint32(len(t.buf)))
	t.buf = append(t.buf, id...)
	t.ends = append(t.ends, uint32(len(t.buf)))
	t.tenant = append(t.tenant, uint32(i))
}

func (t *tenantTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.tenant)
}

// row returns row r's tenant index, key and record id. Rows are not added
// while they are read.
func (t *tenantTable) row(r int) (i int, key, id string) {
	start := uint32(0)
	if r > 0 {
		start = t.ends[2*r-1]
	}
	k, d := t.ends[2*r], t.ends[2*r+1]
	return int(t.tenant[r]), string(t.buf[start:k]), string(t.buf[k:d])
}

// bytes returns the memory the table holds.
func (t *tenantTable) bytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(cap(t.buf)) + 4*int64(cap(t.ends)+cap(t.tenant))
}

// idleWait is how long the tenants are left alone before memory is read:
// long enough for the server's caches (1 s) to expire and its once-a-second
// sweep to drop them, so that what remains is what an idle tenant costs.
const idleWait = 3 * time.Second

// writeHeapProfile writes the heap profile to path, replacing it.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readMemory() Memory {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, Sys: ms.Sys, RSS: rss()}
}

// rss reads the resident set size from /proc (Linux); zero elsewhere.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// WriteText writes r as tables for a reader.
func (r *TenantsReport) WriteText(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "bulkhead bench tenants: gets by id at %s spread over all tenants, %gs per step, %d connections\n",
		frate(s.Rate), s.DurationSec, s.Conns)
	writeTarget(w, r.Target)

	fmt.Fprintln(w, "\nProvisioning (each step adds to the previous one) and the touch of every tenant")
	rows := [][]string{{"tenants", "created", "time", "tenants/s", "via", "touch", "touch errors"}}
	for _, st := range r.Steps {
		rows = append(rows, []string{fint(int64(st.Tenants)), fint(int64(st.Created)), fsec(st.ProvisionSec),
			frate(st.ProvisionRate), st.ProvisionVia, fsec(st.TouchSec), fint(st.TouchErrors)})
	}
	table(w, rows, "rrrrl")

	fmt.Fprintln(w, "\nPer-request latency (from the scheduled send time)")
	rows = [][]string{{"tenants", "requests over", "sent", "late", "errors", "p50", "p90", "p99", "p99.9", "max", "p50 ×first", "p99 ×first"}}
	for _, st := range r.Steps {
		for _, m := range []struct {
			over       string
			s          StreamReport
			p50r, p99r float64
		}{
			{"every tenant", st.Stream, st.P50Ratio, st.P99Ratio},
			{fmt.Sprintf("%d active", hotTenants), st.Hot, st.HotP50Ratio, st.HotP99Ratio},
		} {
			l := m.s.Latency
			rows = append(rows, []string{fint(int64(st.Tenants)), m.over, fint(m.s.Sent), fint(m.s.Late), errorsText(m.s.Result),
				fms(l.P50Ms), fms(l.P90Ms), fms(l.P99Ms), fms(l.P999Ms), fms(l.MaxMs), fratio(m.p50r), fratio(m.p99r)})
		}
	}
	table(w, rows, "rl")
	fmt.Fprintln(w, "  Over every tenant, each request finds its tenant and API key out of the server's 1 s caches once")
	fmt.Fprintln(w, "  tenants outnumber the requests a second; over 10 active tenants the rest are idle.")

	fmt.Fprintln(w, "\nMemory")
	if r.Baseline == nil {
		fmt.Fprintln(w, "  "+r.MemoryNote)
	} else {
		rows = [][]string{{"tenants", "heap in use", "sys", "rss", "generator's share", "heap per tenant", "rss per tenant"}}
		b := r.Baseline
		rows = append(rows, []string{"0 (baseline)", fbytes(float64(b.HeapInuse)), fbytes(float64(b.Sys)), fbytes(float64(b.RSS)), "-", "-", "-"})
		for _, st := range r.Steps {
			m := st.Memory
			rows = append(rows, []string{fint(int64(st.Tenants)), fbytes(float64(m.HeapInuse)), fbytes(float64(m.Sys)), fbytes(float64(m.RSS)),
				fbytes(float64(st.ClientBytes)), fbytes(st.HeapPerTenant), fbytes(st.RSSPerTenant)})
		}
		table(w, rows, "")
		fmt.Fprintln(w, "  "+r.MemoryNote+". Few tenants make the per-tenant figures noise; read the largest count.")
	}
	writeGoals(w, r.Goals)
}
