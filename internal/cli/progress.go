package cli

import (
	"fmt"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress draws a byte-count bar on stderr while image layers are read.
type progress struct {
	bar    *progressbar.ProgressBar
	label  string
	walked int
}

// newProgress returns nil unless stderr is a terminal and --quiet is off.
func newProgress(g *globals, label string) *progress {
	f, ok := g.stderr.(*os.File)
	if g.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetDescription(label),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000),
	)
	return &progress{bar: bar, label: label}
}

func (p *progress) Layer(i, n int, size int64) {
	p.bar.Describe(fmt.Sprintf("%s layer %d/%d", p.label, i+1, n))
}

func (p *progress) Add(n int64) { _ = p.bar.Add64(n) }

func (p *progress) Finish() { _ = p.bar.Finish() }

// Walked counts files visited by the extraction walk.
func (p *progress) Walked() {
	p.walked++
	if p.walked%512 == 0 {
		p.bar.Describe(fmt.Sprintf("%s: %d files walked", p.label, p.walked))
		_ = p.bar.Add(0)
	}
}
