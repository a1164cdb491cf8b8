package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The release builds stamp the variables `bulkhead version` reads: a
// renamed or moved variable would make -X a silent no-op. And the image
// and the unit keep what makes them safe to run.
func TestPackagingFiles(t *testing.T) {
	_, _ = Version, Commit // the variables stamped
	pkg := reflect.TypeOf(buildInfo{}).PkgPath()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, name := range []string{"Makefile", "Dockerfile", ".goreleaser.yaml"} {
		f := strings.ReplaceAll(read(name), "$(PKG)", modulePath) // the Makefile's variable
		for _, want := range []string{"-X " + pkg + ".Version=", "-X " + pkg + ".Commit=", "-trimpath", "CGO_ENABLED=0"} {
			if !strings.Contains(f, want) {
				t.Errorf("%s does not contain %q", name, want)
			}
		}
	}
	for name, wants := range map[string][]string{
		"Dockerfile": {"FROM gcr.io/distroless/static-debian12:nonroot", "USER 65532:65532", `VOLUME ["/data"]`, "EXPOSE 8080",
			"BULKHEAD_DATA=/data", "BULKHEAD_ADDR=0.0.0.0:8080", `"healthcheck"]`, "--mount=type=cache,target=/go/pkg/mod"},
		".dockerignore": {".git\n", ".env\n", "bulkhead-data\n"},
		"deploy/systemd/bulkhead.service": {"User=bulkhead\n", "StateDirectory=bulkhead\n", "NoNewPrivileges=yes\n",
			"ProtectSystem=strict\n", "CapabilityBoundingSet=\n", "EnvironmentFile=/etc/bulkhead/bulkhead.env\n"},
		"compose.yaml": {"image: postgres:15\n", "image: redis:7\n", `command: ["migrate"]`, "condition: service_completed_successfully"},
	} {
		f := read(name)
		if name == "Dockerfile" {
			f = strings.ReplaceAll(f, "ARG BASE_IMAGE=", "FROM ") // the default base image
		}
		for _, want := range wants {
			if !strings.Contains(f, want) {
				t.Errorf("%s does not contain %q", name, want)
			}
		}
	}
}
