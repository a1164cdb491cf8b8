package cli

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// readBuildInfo: the stamped version wins, then the go command's module
// version; the commit is the short revision, with "modified" for a dirty
// tree; go run (no VCS settings, version "(devel)") says dev and unknown.
func TestReadBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.10",
		Main:      debug.Module{Path: "github.com/bulkheadhq/bulkhead", Version: "v0.0.0-20261205124048-4a2d9d6c1e2f+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "4a2d9d6c1e2fb7d0cc3a8e4f5b6a7d8e9f0a1b2c"},
			{Key: "vcs.time", Value: "2026-12-05T12:40:48Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	clean := &debug.BuildInfo{
		GoVersion: "go1.26.10",
		Main:      debug.Module{Path: "github.com/bulkheadhq/bulkhead", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "darwin"}, {Key: "GOARCH", Value: "amd64"},
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	goRun := &debug.BuildInfo{GoVersion: "go1.26.10", Main: debug.Module{Path: "github.com/bulkheadhq/bulkhead", Version: "(devel)"}}
	here := runtime.GOOS + "/" + runtime.GOARCH
	for _, c := range []struct {
		name, stamped, commit string
		bi                    *debug.BuildInfo
		want                  string
	}{
		{"stamped release, dirty tree", "v1.2.3", "", stamped, "bulkhead v1.2.3 (commit 4a2d9d6c1e2f, modified) go1.26.10 linux/arm64"},
		{"go build without -X", "", "", stamped, "bulkhead v0.0.0-20261205124048-4a2d9d6c1e2f+dirty (commit 4a2d9d6c1e2f, modified) go1.26.10 linux/arm64"},
		{"module version, clean tree, short revision", "", "", clean, "bulkhead v1.4.0 (commit abc123) go1.26.10 darwin/amd64"},
		{"the go command's revision wins", "v1.2.3", "0123456789ab", stamped, "bulkhead v1.2.3 (commit 4a2d9d6c1e2f, modified) go1.26.10 linux/arm64"},
		{"go run", "", "", goRun, "bulkhead dev (commit unknown) go1.26.10 " + here},
		{"go run, stamped", "v2.0.0-rc.1", "", goRun, "bulkhead v2.0.0-rc.1 (commit unknown) go1.26.10 " + here},
		{"container build: version and commit stamped", "v2.0.0", "0123456789ab", goRun, "bulkhead v2.0.0 (commit 0123456789ab) go1.26.10 " + here},
		{"no build info", "", "", nil, "bulkhead dev (commit unknown) " + runtime.Version() + " " + here},
	} {
		if got := readBuildInfo(c.stamped, c.commit, c.bi).String(); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	b, _ := json.Marshal(readBuildInfo("v1.2.3", "", stamped))
	if want := `{"version":"v1.2.3","commit":"4a2d9d6c1e2f","modified":true,"commit_time":"2026-12-05T12:40:48Z","go":"go1.26.10","platform":"linux/arm64"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// The command prints what readBuildInfo makes of this test binary, as a
// line or as JSON, and the version recorded in backups is the same.
func TestVersion(t *testing.T) {
	want := currentBuild()
	if out := mustRun(t, t.TempDir(), "version"); out != want.String()+"\n" {
		t.Errorf("version printed %q, want %q", out, want.String())
	}
	var got buildInfo
	if err := json.Unmarshal([]byte(mustRun(t, t.TempDir(), "version", "--json")), &got); err != nil || got != want {
		t.Errorf("version --json = %+v, %v; want %+v", got, err, want)
	}
	if !strings.HasPrefix(want.String(), "bulkhead "+version()+" (commit ") {
		t.Errorf("backups record version %q, the command prints %q", version(), want)
	}
}
