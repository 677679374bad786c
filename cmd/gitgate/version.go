package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=v1.2.3" by release builds.
var version = "dev"

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print gitgate's version and the Kyverno engine it embeds",
		Example: "  gitgate version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kyverno := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					if d.Path == "github.com/kyverno/kyverno" {
						kyverno = d.Version
					}
				}
			}
			fmt.Fprintf(stdout, "gitgate %s (kyverno %s, %s %s/%s)\n", version, kyverno, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
