package sip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The baresip call of TestBaresipCallsVoiced, routed through kamailio, a
// real SIP proxy, as a PBX or an SBC would put it in front of voiced:
// kamailio record-routes the dialog and relays the INVITE to voiced, the
// call is answered, the pipeline hears the caller, baresip hears the
// answer, and the caller's BYE reaches voiced along the recorded route.
func TestKamailioProxiesBaresip(t *testing.T) {
	testBaresipCall(t, "PCMU", "g711.so", 8000, startKamailio)
}

// kamailioModules is where Debian's kamailio package keeps its modules.
const kamailioModules = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

// startKamailio runs kamailio in the foreground on a free loopback port as
// a stateful, record-routing proxy that relays every new INVITE to voiced,
// and returns its address; the test kills it when it ends. No database:
// the configuration routes by a fixed destination.
func startKamailio(t *testing.T, voiced netip.AddrPort) string {
	t.Helper()
	bin := requireBinary(t, "kamailio", "kamailio")
	mods := kamailioModules
	if _, err := os.Stat(filepath.Join(mods, "tm.so")); err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatalf("kamailio modules missing: %v", err)
		}
		t.Skipf("kamailio modules missing (Debian package kamailio): %v", err)
	}
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf(`#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
listen=udp:127.0.0.1:%[1]d
listen=tcp:127.0.0.1:%[1]d
auto_aliases=no
alias="127.0.0.1:%[1]d"
mpath="%[2]s"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "textops.so"

modparam("rr", "enable_full_lr", 1)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (has_totag()) {
		# In-dialog: follow the route the INVITE recorded.
		if (loose_route()) {
			xlog("L_NOTICE", "voiced-test: in-dialog $rm to $ru\n");
			t_relay();
			exit;
		}
		if (is_method("ACK")) {
			if (t_check_trans()) {
				t_relay();
			}
			exit;
		}
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (!is_method("INVITE")) {
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}
	record_route();
	# The gateway: every call goes to voiced, to the dialed user.
	$rd = "%[3]s";
	$rp = %[4]d;
	xlog("L_NOTICE", "voiced-test: relaying INVITE to $ru\n");
	if (!t_relay()) {
		sl_reply_error();
	}
}
`, port, mods, voiced.Addr(), voiced.Port())
	path := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("kamailio -c: %v\n%s", err, out)
	}
	// -DD: no daemon, and kamailio stays our child; -E: log to stderr;
	// -Y: runtime files in the test's directory; small memory pools.
	cmd := exec.Command(bin, "-f", path, "-DD", "-E", "-Y", dir, "-m", "32", "-M", "4")
	// Its log goes to a file: the worker processes it forks hold the
	// descriptor too. It runs in its own process group, which the test
	// ends: SIGTERM to the main process stops the workers; the group
	// is killed should any survive.
	logPath := filepath.Join(dir, "kamailio.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		exited := true
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			// Seen now and then on a busy machine: kamailio's shutdown
			// waits on its workers. How it stops is not what this test is
			// about, but its log is written out as it exits: without it
			// the path cannot be checked.
			exited = false
			t.Logf("kamailio still running 15 s after SIGTERM: killed")
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		text := logText()
		if t.Failed() || testing.Verbose() {
			t.Logf("kamailio:\n%s", text)
		}
		if !t.Failed() && exited {
			// The proxy really was on the path, both ways.
			for _, want := range []string{"relaying INVITE to sip:demo@" + voiced.String(), "in-dialog BYE"} {
				if !strings.Contains(text, want) {
					t.Errorf("kamailio did not log %q:\n%s", want, text)
				}
			}
		}
	})
	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	// Ready when it answers an OPTIONS (405 from this configuration).
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("kamailio exited: %v\n%s", err, logText())
		default:
		}
		if kamailioAnswers(addr) {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio did not answer on %s\n%s", addr, logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kamailioAnswers sends an OPTIONS to addr over UDP and reports whether a
// SIP response came back.
func kamailioAnswers(addr string) bool {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	local := c.LocalAddr().String()
	msg := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-voiced-probe\r\n" +
		"From: <sip:probe@" + local + ">;tag=probe\r\n" +
		"To: <sip:" + addr + ">\r\n" +
		"Call-ID: probe@" + local + "\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ")
}
