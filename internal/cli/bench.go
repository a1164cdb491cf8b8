package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkheadhq/bulkhead/internal/bench"
)

// benchFlags are the flags every bench subcommand shares.
type benchFlags struct {
	url, token        string
	json              bool
	duration, timeout time.Duration
	cpuProfile        string
	memProfile        string
}

func newBench(o *options) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load the API and report throughput, latency and isolation",
		Long: "bench is an open-loop load generator: every stream has a fixed arrival rate, each request is sent\n" +
			"at its scheduled time whether or not earlier ones have finished, and latency counts from that\n" +
			"scheduled time, so a stall shows in full (no coordinated omission).\n\n" +
			"By default it starts a server in this process on a temporary data directory (the embedded\n" +
			"SQLite database, or --database), provisions what it needs through the HTTP API and removes it\n" +
			"all at the end; the generator and the server then share this machine's CPUs. With --url and\n" +
			"--token it loads a running server instead, creating tenants and plans named bn-*/bench-*.\n\n" +
			"Progress goes to stderr, the report to stdout (--json for one JSON document). The exit status\n" +
			"is non-zero only when the bench cannot be set up; goals are reported, not asserted.",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "base URL of a running server to load instead of starting one in process")
	pf.StringVar(&f.token, "token", os.Getenv("BULKHEAD_ADMIN_TOKEN"), "operator token of the --url server (env BULKHEAD_ADMIN_TOKEN)")
	pf.BoolVar(&f.json, "json", false, "print the report as one JSON document")
	pf.DurationVar(&f.duration, "duration", 10*time.Second, "length of each measured phase")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout, counted from the scheduled send time")
	pf.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (generator and in-process server) to this file")
	pf.StringVar(&f.memProfile, "memprofile", "", "bench tenants: write the in-process server's heap profile at the largest tenant count to this file")
	cmd.AddCommand(newBenchCRUD(o, f), newBenchNoisy(o, f), newBenchTenants(o, f))
	return cmd
}

func (f *benchFlags) options(o *options) bench.Options {
	return bench.Options{
		Target:      bench.TargetOptions{URL: f.url, Token: f.token, DatabaseURL: o.database, Log: o.stderr},
		Duration:    f.duration,
		Timeout:     f.timeout,
		Progress:    bench.NewProgress(o.stderr),
		HeapProfile: f.memProfile,
	}
}

// report is what every bench returns.
type report interface{ WriteText(io.Writer) }

func (f *benchFlags) print(o *options, r report) error {
	if f.json {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // the queries hold & and >
		return enc.Encode(r)
	}
	r.WriteText(o.stdout)
	return nil
}

func newBenchCRUD(o *options, f *benchFlags) *cobra.Command {
	var c bench.CRUDOptions
	cmd := &cobra.Command{
		Use:   "crud",
		Short: "Create, get and list throughput and latency, each phase on its own, as ratios to a bare net/http baseline",
		Long: "crud runs its phases one after the other, each for --duration:\n" +
			"  bare            the get phase's requests, sent to a bare net/http handler in this process that answers\n" +
			"                  a GET by id's JSON body and does nothing else: the baseline of the same run\n" +
			"  create, get, list  records of --tenants tenants\n" +
			"  create-encrypted, get-encrypted  with --encrypted: on one more tenant whose collection encrypts two\n" +
			"                  fields (title, tag) of the same records; reported as ratios to create and get too\n" +
			"  get-indexed, list-indexed, list-unindexed  on one more tenant of --indexed-records records whose\n" +
			"                  collection declares an index on (owner, -n): a GET by id, a page of 20 filtered on\n" +
			"                  owner and ordered by -n (the index), and the same filtered on a field without index\n" +
			"The report gives every phase as a ratio to bare, and the lists as ratios to get-indexed. With --max\n" +
			"(closed loop) the throughput ratios are the measure, and the goals are judged on them; in open loop\n" +
			"every phase is offered the same rate, so the latency ratios are.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Options = f.options(o)
			return runBench(cmd.Context(), o, f, func(ctx context.Context) (report, error) { return bench.RunCRUD(ctx, c) })
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&c.Rate, "rate", 500, "arrival rate of each phase, requests per second over all tenants")
	fl.IntVar(&c.Tenants, "tenants", 4, "tenants the requests are spread over")
	fl.IntVar(&c.Conns, "conns", 64, "most requests in flight (one connection each)")
	fl.BoolVar(&c.Max, "max", false, "closed loop instead: --conns workers send back to back, for maximum throughput (latency then hides queueing)")
	fl.IntVar(&c.Seed, "seed", 100, "records created per tenant before measuring")
	fl.IntVar(&c.IndexedRecords, "indexed-records", 20000, "records of one more tenant whose collection declares an index on (owner, -n), for the get-indexed, list-indexed and list-unindexed phases; 0 skips them")
	fl.DurationVar(&c.IndexTimeout, "index-timeout", time.Minute, "how long to wait for that index to be built before measuring anyway")
	fl.BoolVar(&c.Encrypted, "encrypted", false, "also measure create-encrypted and get-encrypted on one more tenant whose collection encrypts two fields, as ratios to create and get")
	return cmd
}

func newBenchNoisy(o *options, f *benchFlags) *cobra.Command {
	var c bench.NoisyOptions
	var modes string
	cmd := &cobra.Command{
		Use:   "noisy",
		Short: "Victim tenants alone, then beside an aggressor: flooding, slow, flooding logins, or rotating its keys",
		Long: "noisy measures the victims' latency alone, then beside an aggressor in each --aggressor mode:\n" +
			"  flood        requests far over its plan (bench-aggressor), then the same on an unlimited plan\n" +
			"  slow-body    record POSTs whose bodies it sends a few bytes a second and never finishes\n" +
			"  slow-read    pages of 1000 records on connections whose answers it does not read\n" +
			"  login-flood  logins without credentials to random slugs; the victims then also log in\n" +
			"  all          every mode above in turn, after one solo phase\n" +
			"  rotate       (opt-in, not in all) the operator rotates the data key of the aggressor, whose collection\n" +
			"               with two encrypted fields holds --rotate-records records, again as soon as each\n" +
			"               re-encryption ends; reports the records re-encrypted per second. Seeding those records\n" +
			"               takes 20 s to 1.5 min on a small machine, and the rotation cut at the phase's end is\n" +
			"               waited for, so all leaves it out: name it with the others (--aggressor all,rotate)\n" +
			"  export       (opt-in, not in all) a tenant admin exports the aggressor, whose collection holds\n" +
			"               --export-records records, again as soon as each export ends; reports records/s\n" +
			"In slow-body, slow-read, rotate and export the aggressor is on the server's default plan (free). Its phases last\n" +
			"30s unless --duration says otherwise: a p99 over the fewer requests of shorter phases moves a lot\n" +
			"from run to run.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if c.Modes, err = bench.ParseAggressorModes(modes); err != nil {
				return err
			}
			c.Options = f.options(o)
			if !cmd.Flags().Changed("duration") {
				c.Options.Duration = 30 * time.Second
			}
			return runBench(cmd.Context(), o, f, func(ctx context.Context) (report, error) { return bench.RunNoisy(ctx, c) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&modes, "aggressor", "flood", "the aggressor's modes, comma-separated: flood, slow-body, slow-read, login-flood, rotate, export, or all (all but rotate and export)")
	fl.IntVar(&c.Victims, "victims", 4, "victim tenants")
	fl.Float64Var(&c.VictimRate, "victim-rate", 20, "each victim's arrival rate, requests per second (60% get, 30% list, 10% create)")
	fl.IntVar(&c.VictimConns, "victim-conns", 64, "most requests in flight per victim")
	fl.Float64Var(&c.VictimLoginRate, "victim-login-rate", 1, "each victim's logins per second, measured apart, when login-flood runs")
	fl.Float64Var(&c.AggressorRate, "aggressor-rate", 0, "the flooding aggressor's arrival rate, requests per second (75% heavy list, 25% create); 0 means 50× --plan-rate")
	fl.IntVar(&c.AggressorConns, "aggressor-conns", 64, "the aggressor's connections (most requests in flight) in flood, slow-body and slow-read")
	fl.IntVar(&c.AggressorKeys, "aggressor-keys", 8, "API keys the aggressor rotates through")
	fl.IntVar(&c.SlowReadLimit, "slow-read-limit", 1000, "slow-read: the page size asked for")
	fl.IntVar(&c.SlowReadRecordSize, "slow-read-record-size", 0, "slow-read: if set, read a collection of the aggressor's own with --slow-read-limit records of this many bytes")
	fl.IntVar(&c.LoginClients, "login-clients", 256, "clients of the login flood, one login in flight each")
	fl.IntVar(&c.RotateRecords, "rotate-records", 20000, "rotate: records of the aggressor's collection with encrypted fields, re-encrypted by each rotation")
	fl.IntVar(&c.ExportRecords, "export-records", 20000, "export: records of the aggressor's collection, read by each export")
	fl.Float64Var(&c.AggressorPlan.RatePerSec, "plan-rate", 20, "rate_per_sec of the flooding aggressor's plan (bench-aggressor)")
	fl.IntVar(&c.AggressorPlan.Burst, "plan-burst", 20, "burst of the flooding aggressor's plan")
	fl.IntVar(&c.AggressorPlan.MaxInflight, "plan-inflight", 8, "max_inflight of the flooding aggressor's plan")
	fl.IntVar(&c.AggressorPlan.Weight, "plan-weight", 1, "weight of the flooding aggressor's plan")
	return cmd
}

func newBenchTenants(o *options, f *benchFlags) *cobra.Command {
	var c bench.TenantsOptions
	cmd := &cobra.Command{
		Use:   "tenants",
		Short: "Per-request latency and memory per idle tenant as the tenant count grows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Options = f.options(o)
			return runBench(cmd.Context(), o, f, func(ctx context.Context) (report, error) { return bench.RunTenants(ctx, c) })
		},
	}
	fl := cmd.Flags()
	fl.IntSliceVar(&c.Counts, "counts", []int{10, 1000, 100000}, "tenant counts to measure at (each step adds to the previous)")
	fl.Float64Var(&c.Rate, "rate", 200, "arrival rate of the measured gets, requests per second over all tenants")
	fl.IntVar(&c.Conns, "conns", 32, "most requests in flight")
	fl.IntVar(&c.ProvisionConns, "provision-conns", 32, "tenants created at once")
	return cmd
}

// runBench runs a bench and prints its report. Its error is a setup
// failure (or an interruption), never a missed goal.
func runBench(ctx context.Context, o *options, f *benchFlags, run func(context.Context) (report, error)) error {
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := run(ctx)
	if err != nil {
		return err
	}
	return f.print(o, r)
}
