package bench

import (
	"context"
	"encoding/json"
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
	// IndexedRecords is the records of one more tenant, whose collection
	// declares an index on (owner, -n), for the phases get-indexed,
	// list-indexed and list-unindexed. Zero skips that tenant and its
	// phases (bulkhead bench crud's --indexed-records defaults to 20,000).
	IndexedRecords int
	// IndexTimeout bounds the wait for that index to be built. Defaults
	// to 60s.
	IndexTimeout time.Duration
	// Encrypted adds one more tenant whose collection encrypts two fields
	// of the bench records (title and tag), and the phases create-encrypted
	// and get-encrypted on it, compared with create and get.
	Encrypted bool
}

// setDefaults fills in the zero fields of o that have defaults.
func (o *CRUDOptions) setDefaults() {
	o.Rate = orFloat(o.Rate, 500)
	o.Tenants = orInt(o.Tenants, 4)
	o.Conns = orInt(o.Conns, 64)
	o.Seed = orInt(o.Seed, 100)
	o.IndexedRecords = max(o.IndexedRecords, 0)
	if o.IndexTimeout <= 0 {
		o.IndexTimeout = time.Minute
	}
}

// RunCRUD measures a bare net/http baseline, then create, get and list,
// then, unless o.IndexedRecords is zero, get and filtered lists on a tenant
// with an indexed collection; each phase on its own, at a fixed arrival
// rate (or closed loop with Max), and each compared with the baseline. It
// returns an error only when the target cannot be set up, which includes
// a server that cannot declare the indexed collection.
func RunCRUD(ctx context.Context, o CRUDOptions) (*CRUDReport, error) {
	o.setDefaults()
	e, err := open(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r := &crudRun{e: e, o: o, rep: newCRUDReport(e, o), rate: o.Rate}
	if o.Max {
		r.rate = 0
	}
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	if err := r.measure(ctx); err != nil {
		return nil, err
	}
	r.rep.compare()
	return r.rep, nil
}

// crudRun is one run of bench crud: its fixtures and the report it fills.
type crudRun struct {
	e    *env
	o    CRUDOptions
	rep  *CRUDReport
	rate float64 // each phase's; zero for closed loop
	// tenants share the create, get and list phases; indexed, nil when
	// skipped, is the indexed tenant; encrypted, nil unless asked for, the
	// tenant whose collection encrypts fields.
	tenants   []*tenantFixture
	indexed   *tenantFixture
	encrypted *tenantFixture
	// bareBody is what the bare baseline answers: a GET by id's body.
	bareBody []byte
}

// setUp creates the tenants and their records, takes the bare
// baseline's body from one of them, and creates the indexed tenant.
func (r *crudRun) setUp(ctx context.Context) error {
	e, o := r.e, r.o
	e.p.Stepf("creating %d tenants with %d records each", o.Tenants, o.Seed)
	if err := e.setup.putPlan(ctx, unlimitedPlan()); err != nil {
		return err
	}
	r.tenants = make([]*tenantFixture, o.Tenants)
	for i := range r.tenants {
		f, err := e.setup.newTenant(ctx, e.setup.slug("crud", i), planUnlimited, 1)
		if err != nil {
			return err
		}
		if err := e.setup.seed(ctx, f, o.Seed); err != nil {
			return err
		}
		r.tenants[i] = f
	}
	f := r.tenants[0]
	var body json.RawMessage
	if err := e.setup.api.do(ctx, "GET", recordsPath(f.Slug)+"/"+f.pickID(0), f.Keys[0], nil, &body, 200); err != nil {
		return err
	}
	r.bareBody = body
	r.rep.Settings.BareBodyBytes = len(body)
	if o.Encrypted {
		e.p.Stepf("creating a tenant whose collection encrypts two fields, with %d records", o.Seed)
		f, err := e.setup.newTenantKeys(ctx, e.setup.slug("crud-enc", 0), planUnlimited, 1)
		if err != nil {
			return err
		}
		err = e.setup.api.do(ctx, "PUT", "/v1/tenants/"+f.Slug+"/collections/"+collection, f.Keys[0],
			map[string]any{"encrypted_fields": []string{"title", "tag"}}, nil, 200, 201)
		if err != nil {
			return err
		}
		if err := e.setup.seed(ctx, f, o.Seed); err != nil {
			return err
		}
		r.encrypted = f
	}
	if o.IndexedRecords == 0 {
		return nil
	}
	var err error
	r.indexed, r.rep.Index, err = e.indexedTenant(ctx, o.IndexedRecords, o.IndexTimeout)
	return err
}

// measure runs the phases one after the other.
func (r *crudRun) measure(ctx context.Context) error {
	bare, err := startBare(r.bareBody)
	if err != nil {
		return err
	}
	defer bare.close()
	api := newClient(r.e.target, r.o.Conns)
	defer api.close()
	bc := newClientAt(bare.URL, r.o.Conns)
	defer bc.close()
	for _, s := range r.streams(api, bc) {
		s.Rate, s.Workers = r.rate, r.o.Conns
		res := r.e.phase(ctx, "crud/"+s.Name, r.e.opts.Duration, s)
		r.rep.Phases = append(r.rep.Phases, summarize(res[0]))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// streams returns the phases in order: bare (GETs by id sent to bare,
// the same requests the get phase sends to api), create, get and list,
// then the indexed tenant's.
func (r *crudRun) streams(api, bare *client) []*Stream {
	pick := func(seq int64) *tenantFixture { return r.tenants[seq%int64(len(r.tenants))] }
	get := func(c *client) SendFunc {
		return func(ctx context.Context, seq int64) (int, error) {
			f := pick(seq)
			return c.get(ctx, f, f.Keys[0], mix(seq))
		}
	}
	ss := []*Stream{
		{Name: phaseBare, SendFunc: get(bare)},
		{Name: "create", SendFunc: func(ctx context.Context, seq int64) (int, error) {
			f := pick(seq)
			return api.create(ctx, f, f.Keys[0], seq)
		}},
		{Name: phaseGet, SendFunc: get(api)},
		{Name: "list", SendFunc: func(ctx context.Context, seq int64) (int, error) {
			f := pick(seq)
			return api.list(ctx, f, f.Keys[0], lightQuery)
		}},
	}
	if f := r.encrypted; f != nil {
		ss = append(ss,
			&Stream{Name: phaseCreateEncrypted, SendFunc: func(ctx context.Context, seq int64) (int, error) {
				return api.create(ctx, f, f.Keys[0], seq)
			}},
			&Stream{Name: phaseGetEncrypted, SendFunc: func(ctx context.Context, seq int64) (int, error) {
				return api.get(ctx, f, f.Keys[0], mix(seq))
			}})
	}
	if r.indexed == nil {
		return ss
	}
	f := r.indexed
	byOwner, byTeam := filteredQueries("owner", ownerValue), filteredQueries("team", teamValue)
	list := func(qs []string) SendFunc {
		return func(ctx context.Context, seq int64) (int, error) {
			return api.list(ctx, f, f.Keys[0], qs[seq%int64(len(qs))])
		}
	}
	return append(ss,
		&Stream{Name: phaseGetIndexed, SendFunc: func(ctx context.Context, seq int64) (int, error) {
			return api.get(ctx, f, f.Keys[0], mix(seq))
		}},
		&Stream{Name: phaseListIndexed, SendFunc: list(byOwner)},
		&Stream{Name: phaseListUnindexed, SendFunc: list(byTeam)},
	)
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
