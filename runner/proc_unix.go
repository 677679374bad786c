//go:build unix

package runner

import (
	"os/exec"
	"syscall"
	"time"
)

// killGrace is how long a cancelled step's processes get between SIGTERM and SIGKILL.
const killGrace = 2 * time.Second

// setProcessGroup starts the step in its own process group and makes cancellation
// signal the whole group: a script's children (sleep, make, a test binary) die with it
// instead of holding the step's output open.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		err := syscall.Kill(-pid, syscall.SIGTERM)
		time.AfterFunc(killGrace, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		return err
	}
	cmd.WaitDelay = killGrace + time.Second
}

// killGroup kills what is left of a finished step's process group (background
// children that outlived the step).
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
