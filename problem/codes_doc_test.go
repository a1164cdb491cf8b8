package problem

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// docs/api.md lists every stable code of this package in its errors table,
// so that the guide cannot fall behind the codes clients branch on.
func TestEveryCodeInTheAPIGuide(t *testing.T) {
	guide, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "problem.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, val := range v.Values {
				code, err := strconv.Unquote(val.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				n++
				if !strings.Contains(string(guide), "| `"+code+"` |") {
					t.Errorf("docs/api.md's errors table lacks the code %q", code)
				}
			}
		}
	}
	if n < 40 {
		t.Fatalf("found %d codes in problem.go; the parse missed some", n)
	}
}
