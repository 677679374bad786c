package runner

import (
	"bytes"
	"io"
	"sync"
)

// lockedWriter serialises whole lines from concurrent steps onto one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) writeLine(prefix string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(buf, prefix...)
	buf = append(buf, line...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		buf = append(buf, '\n')
	}
	_, _ = l.w.Write(buf) // a log that cannot be written must not fail the step
}

// prefixWriter prefixes every line with "[task/step] ". Partial lines are held until
// their newline or Close; very long lines are cut at 64 KiB.
type prefixWriter struct {
	mu     sync.Mutex
	out    *lockedWriter
	prefix string
	buf    []byte
}

const maxLine = 64 << 10

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.buf = append(p.buf, b...)
			if len(p.buf) >= maxLine {
				p.out.writeLine(p.prefix, p.buf)
				p.buf = p.buf[:0]
			}
			break
		}
		if len(p.buf) > 0 {
			p.buf = append(p.buf, b[:i+1]...)
			p.out.writeLine(p.prefix, p.buf)
			p.buf = p.buf[:0]
		} else {
			p.out.writeLine(p.prefix, b[:i+1])
		}
		b = b[i+1:]
	}
	return n, nil
}

// Close writes a last partial line.
func (p *prefixWriter) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.out.writeLine(p.prefix, p.buf)
		p.buf = nil
	}
	return nil
}
