package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestFormatterPrefixesPriority(t *testing.T) {
	f := Formatter{Inner: &logrus.TextFormatter{DisableTimestamp: true, DisableColors: true}}
	for _, c := range []struct {
		level logrus.Level
		want  string
	}{
		{logrus.ErrorLevel, "<3>"},
		{logrus.WarnLevel, "<4>"},
		{logrus.InfoLevel, "<6>"},
		{logrus.DebugLevel, "<7>"},
		{logrus.TraceLevel, "<7>"},
		{logrus.FatalLevel, "<2>"},
	} {
		e := &logrus.Entry{Logger: logrus.New(), Level: c.level, Message: "reload failed\nsecond line", Data: logrus.Fields{"file": "/etc/iet/ietd.conf"}}
		b, err := f.Format(e)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.HasPrefix(s, c.want+"level=") || !strings.HasSuffix(s, "\n") {
			t.Errorf("%v: %q", c.level, s)
		}
		for _, line := range strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n") {
			if !strings.HasPrefix(line, c.want) {
				t.Errorf("%v: line %q lacks %s", c.level, line, c.want)
			}
		}
	}
	// Several lines from the inner formatter: each is prefixed.
	multi := Formatter{Inner: lines{}}
	b, _ := multi.Format(&logrus.Entry{Level: logrus.WarnLevel})
	if string(b) != "<4>a\n<4>b\n" {
		t.Fatalf("%q", b)
	}
}

type lines struct{}

func (lines) Format(*logrus.Entry) ([]byte, error) { return []byte("a\nb\n"), nil }

func TestStderrIsJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	if !StderrIsJournal(stream, f) {
		t.Fatalf("%s: not recognised", stream)
	}
	for _, bad := range []string{"", "1", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), fmt.Sprintf("%d:%d", st.Dev+1, st.Ino), "x:y"} {
		if StderrIsJournal(bad, f) {
			t.Errorf("%q taken for the journal", bad)
		}
	}
}
