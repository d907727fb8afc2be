package testdb

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy in front of a server, for fault tests: while
// it is blackholed it keeps every connection open but forwards nothing, as a
// network partition (or a hung server) looks to a client.
type Proxy struct {
	tb     testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex
	hole    bool
	resumed chan struct{} // closed when the blackhole ends
	conns   []net.Conn
	wg      sync.WaitGroup
}

// NewProxy starts a proxy on a free loopback port in front of the server
// of uri (a mongodb:// URI with one host). It is closed when the test ends.
func NewProxy(tb testing.TB, uri string) *Proxy {
	tb.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		tb.Fatalf("testdb: proxy target %q: %v", uri, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testdb: proxy: %v", err)
	}
	p := &Proxy{tb: tb, ln: ln, target: u.Host, resumed: make(chan struct{})}
	close(p.resumed)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// URI is a URI that reaches the server through the proxy (a direct
// connection, so that the driver does not follow the server's own address).
func (p *Proxy) URI() string {
	return "mongodb://" + p.ln.Addr().String() + "/?directConnection=true"
}

// Blackhole stops forwarding in both directions until Resume: bytes sent
// meanwhile are held, not lost, and no connection is closed.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.hole {
		p.hole = true
		p.resumed = make(chan struct{})
	}
}

// Resume forwards again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hole {
		p.hole = false
		close(p.resumed)
	}
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.Resume()
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst, waiting out each blackhole before it writes.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resumed := p.resumed
			p.mu.Unlock()
			<-resumed
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = src.Close()
			}
			return
		}
	}
}
