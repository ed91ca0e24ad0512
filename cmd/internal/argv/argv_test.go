package argv

import (
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// The flag shapes of ietd (IET getopt "c:fd:s:u:g:a:p:vh") and
// iscsi-target (NetBSD getopt "46b:Df:p:s:t:Vv:").
var ietdFlags = []cli.Flag{
	&cli.StringFlag{Name: "config", Aliases: []string{"c"}},
	&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}},
	&cli.IntFlag{Name: "debug", Aliases: []string{"d"}},
	&cli.IntFlag{Name: "uid", Aliases: []string{"u"}},
	&cli.IntFlag{Name: "gid", Aliases: []string{"g"}},
	&cli.StringSliceFlag{Name: "address", Aliases: []string{"a"}},
	&cli.IntFlag{Name: "port", Aliases: []string{"p"}},
	&cli.StringFlag{Name: "pid-file"},
	&cli.BoolFlag{Name: "check"},
	cli.VersionFlag, cli.HelpFlag,
}

var netbsdFlags = []cli.Flag{
	&cli.BoolFlag{Name: "4"}, &cli.BoolFlag{Name: "6"},
	&cli.IntFlag{Name: "b"}, &cli.BoolFlag{Name: "D"},
	&cli.StringFlag{Name: "f"}, &cli.IntFlag{Name: "p"},
	&cli.IntFlag{Name: "s"}, &cli.StringFlag{Name: "t"},
	&cli.BoolFlag{Name: "V"}, &cli.StringSliceFlag{Name: "v"},
	&cli.StringFlag{Name: "auths"}, &cli.BoolFlag{Name: "check"},
	cli.HelpFlag,
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		flags []cli.Flag
		in    string
		want  string
	}{
		// IET: man page, init scripts (OPTIONS / ISCSITARGET_OPTIONS) and
		// what people type.
		{ietdFlags, "ietd", "ietd"},
		{ietdFlags, "ietd -d1", "ietd -d 1"},
		{ietdFlags, "ietd -d 1", "ietd -d 1"},
		{ietdFlags, "ietd -f -d 3", "ietd -f -d 3"},
		{ietdFlags, "ietd -fd 1", "ietd -f -d 1"},
		{ietdFlags, "ietd -fd1", "ietd -f -d 1"},
		{ietdFlags, "ietd -c/etc/iet/ietd.conf", "ietd -c /etc/iet/ietd.conf"},
		{ietdFlags, "ietd -c /etc/ietd.conf", "ietd -c /etc/ietd.conf"},
		{ietdFlags, "ietd -fc /etc/ietd.conf", "ietd -f -c /etc/ietd.conf"},
		{ietdFlags, "ietd --config=/etc/ietd.conf --debug=2 --foreground", "ietd --config=/etc/ietd.conf --debug=2 --foreground"},
		{ietdFlags, "ietd --config /etc/ietd.conf", "ietd --config /etc/ietd.conf"},
		{ietdFlags, "ietd -u 65534 -g 65534", "ietd -u 65534 -g 65534"},
		{ietdFlags, "ietd -u65534 -g65534", "ietd -u 65534 -g 65534"},
		{ietdFlags, "ietd -a 192.0.2.1 -p 3260", "ietd -a 192.0.2.1 -p 3260"},
		{ietdFlags, "ietd -a192.0.2.1 -p3261", "ietd -a 192.0.2.1 -p 3261"},
		{ietdFlags, "ietd -v", "ietd -v"},
		{ietdFlags, "ietd -h", "ietd -h"},
		// A value that looks like an option is still the value.
		{ietdFlags, "ietd -c -fd", "ietd -c -fd"},
		{ietdFlags, "ietd --pid-file -d1", "ietd --pid-file -d1"},
		{ietdFlags, "ietd -pid-file /run/x.pid", "ietd -pid-file /run/x.pid"},
		{ietdFlags, "ietd -- -d1", "ietd -- -d1"},
		// Unknown letters are left for the parser to reject.
		{ietdFlags, "ietd -fx", "ietd -fx"},
		{ietdFlags, "ietd -s 1", "ietd -s 1"},
		// NetBSD: iscsi-target(8), rc.d iscsi_target_flags, dracut's test
		// suite, FreeNAS.
		{netbsdFlags, "iscsi-target -D", "iscsi-target -D"},
		{netbsdFlags, "iscsi-target -DV", "iscsi-target -D -V"},
		{netbsdFlags, "iscsi-target -4D", "iscsi-target -4 -D"},
		{netbsdFlags, "iscsi-target -46", "iscsi-target -4 -6"},
		{netbsdFlags, "iscsi-target -D -t iqn.2009-06.dracut", "iscsi-target -D -t iqn.2009-06.dracut"},
		{netbsdFlags, "iscsi-target -Dt iqn.2009-06.dracut", "iscsi-target -D -t iqn.2009-06.dracut"},
		{netbsdFlags, "iscsi-target -f /etc/iscsi/targets -p 3260", "iscsi-target -f /etc/iscsi/targets -p 3260"},
		{netbsdFlags, "iscsi-target -f/etc/iscsi/targets -p3260", "iscsi-target -f /etc/iscsi/targets -p 3260"},
		{netbsdFlags, "iscsi-target -b4096 -s 32", "iscsi-target -b 4096 -s 32"},
		{netbsdFlags, "iscsi-target -Dvall", "iscsi-target -D -v all"},
		{netbsdFlags, "iscsi-target -v net -v scsi", "iscsi-target -v net -v scsi"},
		{netbsdFlags, "iscsi-target --auths /etc/iscsi/auths -D", "iscsi-target --auths /etc/iscsi/auths -D"},
		{netbsdFlags, "iscsi-target -check", "iscsi-target -check"},
	} {
		got := Normalize(strings.Fields(tc.in), tc.flags)
		if want := strings.Fields(tc.want); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q, want %q", tc.in, got, want)
		}
	}
}

// TestNormalizeParses runs normalized command lines through urfave/cli.
func TestNormalizeParses(t *testing.T) {
	var debug int
	var fg bool
	var conf string
	app := &cli.App{Name: "ietd", Flags: ietdFlags, Action: func(c *cli.Context) error {
		debug, fg, conf = c.Int("debug"), c.Bool("foreground"), c.String("config")
		return nil
	}}
	if err := app.Run(Normalize([]string{"ietd", "-fd2", "-c/x.conf"}, ietdFlags)); err != nil {
		t.Fatal(err)
	}
	if debug != 2 || !fg || conf != "/x.conf" {
		t.Fatalf("debug %d foreground %v config %q", debug, fg, conf)
	}
}

// TestDropUnknown: NetBSD's getopt complained about an unknown option and
// carried on; the word after an unknown option goes too only when it
// cannot be an option.
func TestDropUnknown(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		warnings []string
	}{
		{"p -x -D -f a", "p -D -f a", []string{"unknown option -x ignored"}},
		{"p -u foo -f a", "p -f a", []string{`unknown option -u ignored, and the word "foo" after it (its argument, or a stray word; NetBSD's getopt read no option after it)`}},
		{"p -Dx -f a", "p -D -f a", []string{"unknown option -x ignored"}},
		{"p -xD -b4096", "p -D -b4096", []string{"unknown option -x ignored"}},
		{"p -Dfx a", "p -Dfx a", nil}, // -f takes "x"
		{"p -d -f a", "p -f a", []string{"unknown option -d ignored"}},
		{"p --nope=1 --check", "p --check", []string{"unknown option --nope=1 ignored"}},
		{"p --nope -D", "p -D", []string{"unknown option --nope ignored"}},
		{"p -f -x", "p -f -x", nil}, // -x is -f's value
		{"p --auths -x -D", "p --auths -x -D", nil},
		{"p -- -x", "p -- -x", nil},
	} {
		got, w := DropUnknown(strings.Fields(tc.in), netbsdFlags)
		if strings.Join(got, " ") != tc.want || !reflect.DeepEqual(w, tc.warnings) {
			t.Errorf("%q: got %q %q, want %q %q", tc.in, strings.Join(got, " "), w, tc.want, tc.warnings)
		}
	}
}
