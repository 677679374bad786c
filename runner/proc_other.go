//go:build !unix

package runner

import (
	"os/exec"
	"time"
)

func setProcessGroup(cmd *exec.Cmd) { cmd.WaitDelay = 3 * time.Second }

func killGroup(cmd *exec.Cmd) {}
