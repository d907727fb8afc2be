package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSummary(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"github.com/databridge-go/databridge/x","Test":"TestA"}`,
		`{"Action":"pass","Package":"github.com/databridge-go/databridge/x","Test":"TestA"}`,
		`{"Action":"run","Package":"github.com/databridge-go/databridge/x","Test":"TestB"}`,
		`{"Action":"output","Package":"github.com/databridge-go/databridge/x","Test":"TestB","Output":"=== RUN   TestB\n"}`,
		`{"Action":"output","Package":"github.com/databridge-go/databridge/x","Test":"TestB","Output":"    b_test.go:9: NOT RUN on FerretDB: no change streams\n"}`,
		`{"Action":"output","Package":"github.com/databridge-go/databridge/x","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}`,
		`{"Action":"skip","Package":"github.com/databridge-go/databridge/x","Test":"TestB"}`,
		`{"Action":"output","Package":"github.com/databridge-go/databridge/x","Output":"ok  \tgithub.com/databridge-go/databridge/x\t0.1s\n"}`,
		`{"Action":"pass","Package":"github.com/databridge-go/databridge/x"}`,
		`{"Action":"output","Package":"github.com/databridge-go/databridge/y","Test":"TestC","Output":"    c_test.go:3: boom\n"}`,
		`{"Action":"fail","Package":"github.com/databridge-go/databridge/y","Test":"TestC"}`,
		`{"Action":"fail","Package":"github.com/databridge-go/databridge/y"}`,
	}, "\n")
	var out strings.Builder
	code := run(strings.NewReader(in), &out)
	s := out.String()
	assert.Equal(t, 1, code)
	assert.Contains(t, s, "x TestB: NOT RUN on FerretDB: no change streams")
	assert.Contains(t, s, "c_test.go:3: boom", "a failure's output is shown")
	assert.Regexp(t, `x\s+1 /   1 /   0`, s)
	assert.Regexp(t, `y\s+0 /   0 /   1  FAIL`, s)
	assert.True(t, strings.HasSuffix(s, "1 passed, 1 failed, 1 skipped\n"), s)
}
