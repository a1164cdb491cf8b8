package cli

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

const modulePath = "github.com/bulkheadhq/bulkhead"

// envReads returns the environment variables that the program reads: the
// names given to os.Getenv, os.LookupEnv, envOr and envInt in the non-test
// sources of every package of this module that cmd/bulkhead links, as
// string literals or constants of the package. A name it cannot tell fails
// the test, so that no read escapes it.
func envReads(t *testing.T) map[string]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.HasPrefix(b, []byte("module "+modulePath+"\n")) {
		t.Fatalf("%s is not the module's root: %v", root, err)
	}
	fset := token.NewFileSet()
	parse := func(pkg string) []*ast.File {
		dir := filepath.Join(root, strings.TrimPrefix(strings.TrimPrefix(pkg, modulePath), "/"))
		names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		var files []*ast.File
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		if len(files) == 0 {
			t.Fatalf("package %s has no sources in %s", pkg, dir)
		}
		return files
	}

	found := map[string]string{} // name → where it is read
	seen := map[string]bool{}
	queue := []string{modulePath + "/cmd/bulkhead"}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		files := parse(pkg)
		consts := map[string]string{}
		for _, f := range files {
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); p == modulePath || strings.HasPrefix(p, modulePath+"/") {
					queue = append(queue, p)
				}
			}
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, spec := range g.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if i < len(vs.Values) {
								if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
									consts[n.Name], _ = strconv.Unquote(lit.Value)
								}
							}
						}
					}
				}
			}
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				if fd, ok := n.(*ast.FuncDecl); ok && fd.Recv == nil && (fd.Name.Name == "envOr" || fd.Name.Name == "envInt") {
					return false // the wrappers' own reads: their callers name the variable
				}
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var fn string
				switch fun := call.Fun.(type) {
				case *ast.Ident:
					fn = fun.Name
				case *ast.SelectorExpr:
					if x, ok := fun.X.(*ast.Ident); ok {
						fn = x.Name + "." + fun.Sel.Name
					}
				}
				if !slices.Contains([]string{"os.Getenv", "os.LookupEnv", "envOr", "envInt"}, fn) {
					return true
				}
				where := fset.Position(call.Pos()).String()
				switch arg := call.Args[0].(type) {
				case *ast.BasicLit:
					name, _ := strconv.Unquote(arg.Value)
					found[name] = where
				case *ast.Ident:
					if name, ok := consts[arg.Name]; ok {
						found[name] = where
						return true
					}
					t.Errorf("%s: %s(%s): cannot tell which variable is read", where, fn, arg.Name)
				default:
					t.Errorf("%s: %s: cannot tell which variable is read", where, fn)
				}
				return true
			})
		}
	}
	if !seen[modulePath+"/internal/cli"] || !seen[modulePath+"/store/pgstore"] {
		t.Fatalf("the walk from cmd/bulkhead missed packages it links: %v", seen)
	}
	return found
}

// helpOutputs runs --help of every command and returns each output.
func helpOutputs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		var stdout, stderr bytes.Buffer
		if code := Main(append(slices.Clone(path), "--help"), &stdout, &stderr); code != 0 {
			t.Fatalf("bulkhead %s --help = exit %d: %s", strings.Join(path, " "), code, stderr.String())
		}
		out[strings.Join(append([]string{"bulkhead"}, path...), " ")] = stdout.String()
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub, append(slices.Clone(path), sub.Name()))
			}
		}
	}
	walk(newRoot(nil, nil, nil), nil)
	return out
}

// Every environment variable the program reads is named in the help of
// some command: flags say which variable they fall back on, the root's
// help lists those read without a flag (OTEL_* generically).
func TestHelpNamesEveryEnvironmentVariable(t *testing.T) {
	reads := envReads(t)
	for _, want := range []string{"BULKHEAD_DATABASE_URL", "BULKHEAD_ADMIN_TOKEN", "BULKHEAD_KEK", "VAULT_TOKEN", "BULKHEAD_TENANT_KEY"} {
		if reads[want] == "" {
			t.Errorf("the scan found no read of %s: it misses reads (found %v)", want, reads)
		}
	}
	var all strings.Builder
	for _, h := range helpOutputs(t) {
		all.WriteString(h)
	}
	help := all.String()
	for name, where := range reads {
		if strings.HasPrefix(name, "BULKHEAD_TEST_") {
			continue // the tests' services, documented with the tests
		}
		if strings.HasPrefix(name, "OTEL_") && strings.Contains(help, "OTEL_*") {
			continue
		}
		if !strings.Contains(help, name) {
			t.Errorf("%s (read at %s) is named in no command's --help", name, where)
		}
	}
}

// The help shows no credential that a flag's default took from the
// environment: none of a URL's (but the public one's), a token's, a key's
// (but the TLS key's file name) or a webhook's.
func TestHelpHidesCredentials(t *testing.T) {
	for name := range envReads(t) {
		if name == "BULKHEAD_PUBLIC_URL" || name == "BULKHEAD_TLS_KEY" {
			continue
		}
		if strings.Contains(name, "URL") || strings.Contains(name, "TOKEN") || strings.Contains(name, "KEY") ||
			strings.Contains(name, "KEK") || strings.Contains(name, "EVENTS") || strings.HasSuffix(name, "_DIR") {
			t.Setenv(name, "s3://user:s3cret@example.com/x?token=s3cret")
		}
	}
	for cmd, h := range helpOutputs(t) {
		if strings.Contains(h, "s3cret") {
			t.Errorf("%s --help shows a credential from the environment:\n%s", cmd, h)
		}
	}
}
