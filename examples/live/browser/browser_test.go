// Package browser tests the live example's page in a real browser:
// Debian's Chromium, driven by chromedp. It is a module of its own so that
// the library's go.mod does not gain chromedp. Without Chromium
// (/usr/bin/chromium, or CHROMIUM naming another) the test is NOT RUN;
// `make browser-test` installs it and runs the test.
package browser

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/examples/live/livepage"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("NOT RUN: no browser at %s (make browser-test installs Debian's chromium and runs this test)", path)
	}
	return path
}

// TestPageShowsTheChange: the page lists the open items, and shows a new
// one after a write, without a reload.
func TestPageShowsTheChange(t *testing.T) {
	path := chromium(t)
	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	defer c.Close()
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	coll := testdb.DBOn(t, cl).Collection("items")
	items, err := odm.New[livepage.Item](coll, odm.WithCache(c))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, items.Save(ctx, &livepage.Item{ID: 1, Title: "write the docs"}))
	srv := httptest.NewServer(livepage.Handler(items))
	defer srv.Close()

	// The flags the machine's notes say Chromium needs here: headless, no
	// sandbox (root), and no background networking (its connections are
	// refused on this closed network).
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		require.NoError(t, err, sel)
		return s
	}
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(`#items li[data-id="1"]`)))
	assert.Equal(t, "1 open", text("#status"))
	assert.Contains(t, text("#items"), "write the docs")

	// A write: the page shows it, no reload.
	require.NoError(t, items.Save(ctx, &livepage.Item{ID: 2, Title: "test in a browser"}))
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(`#items li[data-id="2"]`)))
	assert.Equal(t, "2 open", text("#status"))
	assert.Contains(t, text("#items"), "test in a browser")

	// A raw driver write closes item 1: it leaves the page.
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitNotPresent(`#items li[data-id="1"]`)))
	assert.Equal(t, "1 open", text("#status"))
}
