package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// resolvedStep is a step with its stepTemplate applied and its variables substituted.
type resolvedStep struct {
	name       string
	image      string
	command    []string
	args       []string
	workingDir string
	script     string
	env        []corev1.EnvVar
	envFrom    []corev1.EnvFromSource
	timeout    time.Duration
}

// resolveStep applies the Task's stepTemplate to step i and substitutes its variables.
func resolveStep(spec TaskSpec, i int, tv *vars) (resolvedStep, error) {
	s := spec.Steps[i]
	rs := resolvedStep{name: s.Name, image: s.Image, command: s.Command, args: s.Args, workingDir: s.WorkingDir, script: s.Script, envFrom: s.EnvFrom}
	if rs.name == "" {
		rs.name = "unnamed-" + strconv.Itoa(i)
	}
	if s.Timeout != nil {
		rs.timeout = s.Timeout.Duration
	}
	env := map[string]int{}
	if st := spec.StepTemplate; st != nil {
		if rs.image == "" {
			rs.image = st.Image
		}
		if rs.workingDir == "" {
			rs.workingDir = st.WorkingDir
		}
		if len(rs.command) == 0 && rs.script == "" {
			rs.command = st.Command
			if len(rs.args) == 0 {
				rs.args = st.Args
			}
		}
		rs.envFrom = append(append([]corev1.EnvFromSource{}, st.EnvFrom...), rs.envFrom...)
		for _, e := range st.Env {
			env[e.Name] = len(rs.env)
			rs.env = append(rs.env, e)
		}
	}
	for _, e := range s.Env {
		if j, ok := env[e.Name]; ok {
			rs.env[j] = e
			continue
		}
		env[e.Name] = len(rs.env)
		rs.env = append(rs.env, e)
	}
	var err error
	sub := func(field, v string) string {
		out, e := substitute(v, tv.resolve)
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %w", field, e)
		}
		return out
	}
	rs.image = sub("image", rs.image)
	rs.workingDir = sub("workingDir", rs.workingDir)
	rs.script = sub("script", rs.script)
	if rs.command, err = substituteListErr("command", rs.command, tv, err); err != nil {
		return rs, err
	}
	if rs.args, err = substituteListErr("args", rs.args, tv, err); err != nil {
		return rs, err
	}
	for j := range rs.env {
		e := rs.env[j]
		e.Value = sub("env "+e.Name, e.Value)
		rs.env[j] = e
	}
	return rs, err
}

func substituteListErr(field string, list []string, tv *vars, prev error) ([]string, error) {
	if prev != nil {
		return list, prev
	}
	out, err := substituteList(list, tv.resolve, tv.array)
	if err != nil {
		return list, fmt.Errorf("%s: %w", field, err)
	}
	return out, nil
}

// step runs step i of t on the host and returns its terminated state.
func (r *runner) step(ctx context.Context, t *PlannedTask, i int, tv *vars, dir string) StepState {
	s := t.Spec.Steps[i]
	started := r.opts.Now()
	ss := StepState{Name: s.Name, Container: "step-" + s.Name, Image: s.Image}
	end := func(code int, reason, msg string) StepState {
		ss.Terminated = &StepTerminated{ExitCode: code, Reason: reason, Message: msg, StartedAt: started, FinishedAt: r.opts.Now()}
		return ss
	}
	rs, err := resolveStep(t.Spec, i, tv)
	if err != nil {
		return end(1, "Error", err.Error())
	}
	ss.Name, ss.Container, ss.Image = rs.name, "step-"+rs.name, rs.image
	out := &prefixWriter{out: r.log, prefix: stepLabel(t.Name, rs.name)}
	defer out.Close()

	var argv []string
	switch {
	case rs.script != "":
		script := rs.script
		if !strings.HasPrefix(script, "#!") {
			script = "#!/bin/sh\nset -e\n" + script // Tekton's default interpreter
		}
		path := filepath.Join(dir, "scripts", fmt.Sprintf("%02d-%s", i, sanitize(rs.name)))
		if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
			return end(1, "Error", fmt.Sprintf("write the script: %v", err))
		}
		// The interpreter is started with the script as its argument, as the kernel
		// would for the shebang: exec'ing a file just written races with concurrent
		// forks that still hold its write descriptor (ETXTBSY, golang/go#22315).
		argv = append(append(shebang(script), path), rs.args...)
	case len(rs.command) > 0:
		argv = append(append([]string{}, rs.command...), rs.args...)
	default:
		return end(1, "Error", fmt.Sprintf("no command and no script: the entrypoint of image %s is not known on the host; add command: or script: to the step", rs.image))
	}

	wd := rs.workingDir
	switch {
	case wd == "":
		wd = filepath.Join(dir, "work")
	case !filepath.IsAbs(wd):
		wd = filepath.Join(dir, "work", wd)
	}
	if err := os.MkdirAll(wd, 0o777); err != nil {
		return end(1, "Error", fmt.Sprintf("workingDir %s: %v", wd, err))
	}

	env := os.Environ()
	for _, e := range rs.env {
		if e.ValueFrom != nil {
			r.note(t.Name+"/"+rs.name, "env %s: valueFrom (%s) is not resolved on the host; the variable is taken from gitgate's environment if set", e.Name, valueFromKind(e.ValueFrom))
			continue
		}
		env = append(env, e.Name+"="+e.Value)
	}
	if len(rs.envFrom) > 0 {
		r.note(t.Name+"/"+rs.name, "envFrom is not resolved on the host (ConfigMaps and Secrets live in a cluster)")
	}

	sctx := ctx
	if rs.timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, rs.timeout)
		defer cancel()
	}
	code, runErr := runProcess(sctx, argv, wd, env, out)
	switch {
	case ctx.Err() != nil:
		return end(exitOr(code, 143), "Cancelled", "cancelled")
	case sctx.Err() != nil:
		return end(exitOr(code, 143), "TimeoutExceeded", fmt.Sprintf("step timed out after %s", rs.timeout))
	case runErr != nil:
		return end(exitOr(code, 1), "Error", runErr.Error())
	case code != 0:
		return end(code, "Error", fmt.Sprintf("exited with code %d", code))
	}
	return end(0, "Completed", "")
}

// shebang is the interpreter command of a script's #! line: the interpreter and its
// optional single argument, as the kernel splits it.
func shebang(script string) []string {
	line, _, _ := strings.Cut(strings.TrimPrefix(script, "#!"), "\n")
	line = strings.TrimSpace(line)
	interp, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return []string{interp}
	}
	return []string{interp, arg}
}

func exitOr(code, def int) int {
	if code > 0 {
		return code
	}
	return def
}

func valueFromKind(v *corev1.EnvVarSource) string {
	switch {
	case v.SecretKeyRef != nil:
		return "secretKeyRef " + v.SecretKeyRef.Name + "/" + v.SecretKeyRef.Key
	case v.ConfigMapKeyRef != nil:
		return "configMapKeyRef " + v.ConfigMapKeyRef.Name + "/" + v.ConfigMapKeyRef.Key
	case v.FieldRef != nil:
		return "fieldRef " + v.FieldRef.FieldPath
	}
	return "resourceFieldRef"
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == 0 {
			return '_'
		}
		return r
	}, name)
}

// outputDrain bounds how long a finished step's output is read after its process
// group was killed (a process that left the group may still hold the pipe).
const outputDrain = 2 * time.Second

// runProcess runs argv in its own process group with stdout and stderr to out. It
// returns the exit code (128+signal when killed) and an error when the process could
// not start. When ctx ends, the whole process group is signalled.
func runProcess(ctx context.Context, argv []string, dir string, env []string, out io.Writer) (int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, fmt.Errorf("%s: %w", argv[0], err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 1, err
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = pw, pw // *os.File: no copying goroutines inside exec
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		pw.Close()
		return 126, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(out, pr)
		close(copied)
	}()
	waitErr := cmd.Wait()
	killGroup(cmd) // background children die with their step, as in a container
	select {
	case <-copied:
	case <-time.After(outputDrain):
		pr.Close()
		<-copied
	}
	if waitErr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, waitErr
}
