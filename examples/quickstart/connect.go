package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
)

// connect connects to uri and checks that the server answers. The
// client carries the cache's command monitor (cache.Observer): a cache
// stores only what it loads through such a client, so that raw driver
// writes and transactions reach it too. A client
// waits 30 s by default for a server it cannot reach (server selection);
// SetServerSelectionTimeout shortens that for every call of this client.
// The error is the driver's, with the URI's password redacted, and a hint
// to start the dev server only when nothing listens at the address (see
// startHint).
func connect(uri string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(2 * time.Second).
		SetMonitor(cache.Observer(nil)))
	if err == nil {
		if err = client.Ping(context.Background(), nil); err != nil {
			_ = client.Disconnect(context.Background())
		}
	}
	if err == nil {
		return client, nil
	}
	msg := fmt.Sprintf("MongoDB at %s: %v", redact(uri), err)
	if _, password := credentials(uri); password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	if strings.Contains(msg, "connection refused") {
		msg += "\n" + startHint(uri)
	}
	return nil, fmt.Errorf("%s", msg)
}

// devServerAddr is where `make devserver` listens unless given ADDR.
const devServerAddr = "127.0.0.1:27017"

// startHint says how to start a server where uri points: `make devserver`
// for the dev server's default address, `make devserver ADDR=host:port` for
// another single host, and no dev server for a URI with several hosts or a
// mongodb+srv URI (the dev server is one server, found by its address).
func startHint(uri string) string {
	const other = "or set MONGODB_URI to a running MongoDB"
	addr, ok := hostPort(uri)
	switch {
	case !ok:
		return "nothing listens there: start MongoDB there, " + other
	case addr == devServerAddr:
		return "nothing listens there: start the dev server with `make devserver`, " + other
	default:
		return "nothing listens there: start the dev server with `make devserver ADDR=" + addr + "`, " + other
	}
}

// hostPort returns the host:port of a mongodb:// URI with one host, with
// MongoDB's default port when the URI names none.
func hostPort(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		return "", false
	}
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = authority[at+1:]
	}
	if authority == "" || strings.Contains(authority, ",") {
		return "", false
	}
	if _, _, err := net.SplitHostPort(authority); err != nil {
		return net.JoinHostPort(strings.Trim(authority, "[]"), "27017"), true
	}
	return authority, true
}

// redact returns uri with its password replaced by xxxxx. It does not
// parse the URI as a URL: a MongoDB URI may list several hosts, which
// net/url refuses.
func redact(uri string) string {
	userinfo, password := credentials(uri)
	if password == "" {
		return uri
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return strings.Replace(uri, userinfo+"@", user+":xxxxx@", 1)
}

// credentials returns the user information of uri (user:password) and
// its password, if any.
func credentials(uri string) (userinfo, password string) {
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "", ""
	}
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return "", ""
	}
	userinfo = authority[:at]
	_, password, _ = strings.Cut(userinfo, ":")
	return userinfo, password
}
