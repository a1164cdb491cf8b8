package cli

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/bulkheadhq/bulkhead/internal/cli.Version=v1.2.3".
var Version = ""

// Commit is the revision built from, set at build time where the go
// command cannot record it (a container build without .git) with
// -ldflags "-X github.com/bulkheadhq/bulkhead/internal/cli.Commit=…".
// The revision the go command records wins.
var Commit = ""

// buildInfo is what `bulkhead version` reports about the binary.
type buildInfo struct {
	// Version is the release version: Version when the build stamped it,
	// else the module version the go command recorded, else "dev".
	Version string `json:"version"`
	// Commit is the short revision of the checkout built from, or
	// "unknown" when the go command recorded none (go run, a tarball).
	Commit string `json:"commit"`
	// Modified tells whether the checkout had uncommitted changes.
	Modified bool `json:"modified"`
	// CommitTime is the commit's time (RFC 3339), if recorded.
	CommitTime string `json:"commit_time,omitempty"`
	// Go is the toolchain that built the binary.
	Go string `json:"go"`
	// Platform is the target, os/arch.
	Platform string `json:"platform"`
}

// shortCommit is how many hex digits of the revision are shown.
const shortCommit = 12

// readBuildInfo describes the binary from the stamped version and commit
// and the build information the go command embeds (bi may be nil).
func readBuildInfo(stamped, commit string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: stamped, Commit: cmp.Or(commit, "unknown"), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		b.Version = cmp.Or(b.Version, "dev")
		return b
	}
	if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	b.Version = cmp.Or(b.Version, "dev")
	b.Go = cmp.Or(bi.GoVersion, b.Go)
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value[:min(len(s.Value), shortCommit)]
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.CommitTime = s.Value
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		b.Platform = goos + "/" + goarch
	}
	return b
}

// String is the one line `bulkhead version` prints, such as
// "bulkhead v1.2.3 (commit 4a2d9d6c1e2f, modified) go1.26.10 linux/amd64".
func (b buildInfo) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "bulkhead %s (commit %s", b.Version, b.Commit)
	if b.Modified {
		s.WriteString(", modified")
	}
	fmt.Fprintf(&s, ") %s %s", b.Go, b.Platform)
	return s.String()
}

// currentBuild describes this binary.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return readBuildInfo(Version, Commit, bi)
}

// version is the version recorded in backups.
func version() string { return currentBuild().Version }

func newVersion(o *options) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit built from, the Go version and the platform",
		Long: "version prints the release version (stamped at build time with -ldflags -X\n" +
			"github.com/bulkheadhq/bulkhead/internal/cli.Version=…, else the module version the go command\n" +
			"recorded, else dev), the commit of the checkout built from and whether it had uncommitted\n" +
			"changes (recorded by go build in a git checkout; go run records none: commit unknown), the Go\n" +
			"version and the platform.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := currentBuild()
			if asJSON {
				return o.print(b)
			}
			_, err := fmt.Fprintln(o.stdout, b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}
