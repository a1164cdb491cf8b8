// Package bench is the load generator behind "bulkhead bench": open-loop
// streams of HTTP requests against a bulkhead server, and the benches built
// on them (crud, noisy, tenants) with their reports.
//
// Open loop means each Stream has a fixed arrival rate: request i is due at
// start + i/rate and goes out at that time whether or not earlier requests
// have been answered, from a bounded pool of workers (one connection each).
// A request due while every worker is busy is counted late and sent when one
// frees; either way its latency counts from its due time, so a server that
// stalls cannot hide the requests its stall delayed (no coordinated
// omission). Latencies go into a log-linear Histogram whose quantiles are
// within RelativeError (0.4%) of the exact ones; the maximum is exact.
//
// A Target is the server under load: by default one started in this
// process on a temporary directory, provisioned through its HTTP API with
// the operator token the bench gave it, or a running server at a URL. In
// process, the generator and the server share the machine's CPUs, and the
// reports say so.
//
// Numbers are reported as ratios to a baseline measured in the same run
// (bench crud's bare net/http handler, bench noisy's victims alone), so
// that a slower or busier machine moves both sides together.
//
// Nothing here is a stable API: reports gain fields as the server gains
// isolation features, and the JSON documents (--json) follow the Go types.
package bench
