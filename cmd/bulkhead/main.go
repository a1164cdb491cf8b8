// Command bulkhead runs the bulkhead server and its administrative commands.
// Run "bulkhead --help" for the list.
package main

import (
	"os"

	"github.com/bulkheadhq/bulkhead/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
