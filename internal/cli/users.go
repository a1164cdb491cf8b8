package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func newUser(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage a tenant's users (people who sign in with a password or OpenID Connect)", Long: tenantCredentialHelp}
	var slug string
	list := &cobra.Command{
		Use:   "list --tenant SLUG",
		Short: "List a tenant's users, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.inTenant(cmd, slug, func(sc *core.Scope) error {
				page, err := sc.ListUsers(cmd.Context())
				if err != nil {
					return explain(err)
				}
				return o.print(page.Items)
			})
		},
	}
	list.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	_ = list.MarkFlagRequired("tenant")
	cmd.AddCommand(list, newUserCreate(o), newUserSetRole(o))
	return cmd
}

// newUserCreate is "user create": POST /v1/tenants/{tenant}/users. The
// password never comes from a flag's value, which other users could read
// in the process list.
func newUserCreate(o *options) *cobra.Command {
	var slug, role, passwordFile string
	var p core.CreateUserParams
	cmd := &cobra.Command{
		Use:   "create --tenant SLUG --email EMAIL --role ROLE [--password-file FILE]",
		Short: "Add a user to a tenant; the password is read from a file, a prompt or stdin",
		Long: "create adds a user with a password, as POST /v1/tenants/{tenant}/users does. The password is\n" +
			"read from --password-file (its first line; - for stdin), else asked for twice when stdin is a\n" +
			"terminal, else read from stdin's first line. It is never a flag's value.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Role = tenant.Role(role)
			if err := o.existingStore(); err != nil { // before asking for a password
				return err
			}
			var err error
			if p.Password, err = o.readPassword(passwordFile); err != nil {
				return err
			}
			return o.inTenant(cmd, slug, func(sc *core.Scope) error {
				u, err := sc.CreateUser(cmd.Context(), p, nil)
				if err != nil {
					return explain(err)
				}
				return o.print(u)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	cmd.Flags().StringVar(&p.Email, "email", "", "the user's email address, which they sign in with (required)")
	cmd.Flags().StringVar(&role, "role", "", "owner, admin, member or viewer (required)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "a file whose first line is the password, or - for stdin (default: a prompt, or stdin when it is no terminal)")
	for _, f := range []string{"tenant", "email", "role"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// readPassword reads a new user's password from file (- for stdin), else
// from a prompt on the terminal, else from stdin: the first line, without
// its line ending.
func (o *options) readPassword(file string) (string, error) {
	if file != "" && file != "-" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		return firstLine(b), nil
	}
	if f, ok := o.stdin.(*os.File); ok && file == "" && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(o.stderr, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(o.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(o.stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(o.stderr)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(pw, again) {
			return "", errors.New("the passwords differ")
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(o.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	if line == "" {
		return "", errors.New("no password: give --password-file, or the password on stdin")
	}
	return firstLine([]byte(line)), nil
}

// firstLine is b's first line without its line ending.
func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r")
}

// newUserSetRole is "user set-role": PATCH /v1/tenants/{tenant}/users/{id}
// with a role.
func newUserSetRole(o *options) *cobra.Command {
	var slug string
	cmd := &cobra.Command{
		Use:   "set-role --tenant SLUG ID|EMAIL ROLE",
		Short: "Give a tenant's user another role; their sessions end",
		Long: "set-role gives the user (by ID or email) the role owner, admin, member or viewer, as\n" +
			"PATCH /v1/tenants/{tenant}/users/{id} does: the tenant keeps at least one owner, and a changed\n" +
			"role revokes the user's refresh tokens, so that no token goes on carrying the old role.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			role := tenant.Role(args[1])
			return o.inTenant(cmd, slug, func(sc *core.Scope) error {
				id := store.UserID(args[0])
				if strings.Contains(args[0], "@") {
					page, err := sc.ListUsers(cmd.Context())
					if err != nil {
						return explain(err)
					}
					id = ""
					for _, u := range page.Items {
						if u.Email == core.NormalizeEmail(args[0]) {
							id = u.ID
						}
					}
					if id == "" {
						return fmt.Errorf("tenant %s has no user %s", slug, args[0])
					}
				}
				u, err := sc.UpdateUser(cmd.Context(), id, core.UpdateUserParams{Role: &role})
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("tenant %s has no user %s", slug, args[0])
				}
				if err != nil {
					return explain(err)
				}
				return o.print(u)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}
