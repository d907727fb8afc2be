package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// proc is a worker process, as the parent sees it: calls may be made from
// many goroutines at once.
type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser

	mu    sync.Mutex // guards what follows and writes to in
	enc   *json.Encoder
	next  uint64
	calls map[uint64]chan reply

	done chan struct{} // closed when the worker's stdout ends
	err  error         // why it ended; read after done
}

// startProc starts a worker: this executable again, with WorkerEnv set.
func startProc() (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fleet: start a worker: %w", err)
	}
	p := &proc{cmd: cmd, in: in, enc: json.NewEncoder(in), calls: map[uint64]chan reply{}, done: make(chan struct{})}
	go p.readReplies(out)
	return p, nil
}

// readReplies hands each reply to its call, until the worker's stdout
// ends.
func (p *proc) readReplies(out io.Reader) {
	dec := json.NewDecoder(out)
	for {
		var r reply
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("it exited")
			}
			p.err = err
			close(p.done)
			return
		}
		p.mu.Lock()
		ch := p.calls[r.ID]
		delete(p.calls, r.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- r // buffered
		}
	}
}

// call sends req and waits for its reply; a reply with an error is
// returned as one.
func (p *proc) call(ctx context.Context, req request) (reply, error) {
	ch := make(chan reply, 1)
	p.mu.Lock()
	p.next++
	req.ID = p.next
	p.calls[req.ID] = ch
	err := p.enc.Encode(req)
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		delete(p.calls, req.ID)
		p.mu.Unlock()
	}
	if err != nil {
		forget()
		return reply{}, fmt.Errorf("worker %d: send: %w", p.cmd.Process.Pid, err)
	}
	select {
	case r := <-ch:
		if r.Err != "" {
			return r, fmt.Errorf("worker %d: %s", p.cmd.Process.Pid, r.Err)
		}
		return r, nil
	case <-p.done:
		return reply{}, fmt.Errorf("worker %d stopped: %w", p.cmd.Process.Pid, p.err)
	case <-ctx.Done():
		forget()
		return reply{}, ctx.Err()
	}
}

// stop asks the worker to quit, ends its stdin, and waits for it to exit:
// 10 s at most, then it is killed. It returns how the worker ended.
func (p *proc) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = p.call(ctx, request{Quit: true})
	_ = p.in.Close()
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("worker %d: %w", p.cmd.Process.Pid, err)
	}
	return nil
}

// startFleet starts n workers and sets each up with s, in parallel; on an
// error it stops those it started.
func startFleet(ctx context.Context, n int, s setup) ([]*proc, error) {
	procs := make([]*proc, 0, n)
	for range n {
		p, err := startProc()
		if err != nil {
			return nil, errors.Join(err, stopFleet(procs))
		}
		procs = append(procs, p)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			_, errs[i] = p.call(ctx, request{Setup: &s})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, stopFleet(procs))
	}
	return procs, nil
}

// stopFleet stops every worker, in parallel.
func stopFleet(procs []*proc) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
