package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp"
	"golang.org/x/oauth2"
)

// TestChrome signs in with a real browser: headless Chromium driven over
// the DevTools protocol, at a desktop and at a mobile width. It goes
// through the demo's flow and a registered client's flow (first login with
// enrolment, recovery codes, consent, callback; a returning login), types
// the login with the keyboard only, sees the wrong-password and wrong-code
// messages, and saves a screenshot of every page it visits under
// test-output/screens/ (TWOSTEP_SCREENS_DIR overrides) for a person to look
// at. Without Chromium it skips, except under CI=true.
func TestChrome(t *testing.T) {
	browser := startChromium(t)
	shots := newScreens(t)
	for _, vp := range chromeViewports {
		t.Run(vp.name, func(t *testing.T) {
			t.Parallel()
			c := &chromeRun{browser: browser, vp: vp, shots: shots}
			t.Run("demo", c.demoFlow)
			t.Run("client", c.clientFlow)
			t.Run("errors", c.errorFlow)
			t.Run("account", c.accountFlow)
			t.Run("onboarding", c.onboardingFlow)
		})
	}
}

// chromeViewport is a window size, and whether Chromium emulates a phone.
type chromeViewport struct {
	name          string
	width, height int64
	mobile        bool
}

var chromeViewports = []chromeViewport{
	{name: "desktop", width: 1280, height: 800},
	{name: "mobile", width: 390, height: 844, mobile: true},
}

// chromeActionTimeout bounds every browser action, so a hang fails the
// test instead of blocking it; chromeBudget bounds the browser's whole
// life, its start included.
const (
	chromeActionTimeout = 30 * time.Second
	chromeBudget        = 5 * time.Minute
)

// startChromium starts Debian's headless Chromium and returns its browser
// context; cleanup closes it. Tabs are its children.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("chromium"); err != nil {
			const msg = "no chromium (apt-get install chromium) for the real-browser test"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + ", and CI=true needs it")
			}
			t.Skip(msg)
		}
	}
	output := newSyncBuffer()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		// The pages are translated; the screenshots show one language.
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(output),
	)
	budget, cancelBudget := context.WithTimeout(context.Background(), chromeBudget)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(budget, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser() // closes the browser
		cancelAlloc()   // waits for it and removes its profile
		cancelBudget()
	})
	// The first Do starts the browser and binds it to browserCtx, which has
	// no deadline of its own (see chromedp.NewContext).
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, output)
	}
	return browserCtx
}

// screens names and writes the screenshots: NN-page-viewport.png, numbered
// in visiting order per viewport so both widths of one page sort together.
type screens struct {
	dir string
	mu  sync.Mutex
	n   map[string]int
}

func newScreens(t *testing.T) *screens {
	t.Helper()
	dir := os.Getenv("TWOSTEP_SCREENS_DIR")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "test-output", "screens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Screenshots of an earlier run would pass for this run's.
	old, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	t.Logf("screenshots in %s", dir)
	return &screens{dir: dir, n: map[string]int{}}
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}

func (s *screens) path(page string, vp chromeViewport) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n[vp.name]++
	return filepath.Join(s.dir, fmt.Sprintf("%02d-%s-%s.png", s.n[vp.name], page, vp.name))
}

// chromeRun is one viewport's run of the flows.
type chromeRun struct {
	browser context.Context
	vp      chromeViewport
	shots   *screens
}

// chromeTab is a tab in a fresh browser context (its own cookies, like a
// private window) at the run's viewport.
type chromeTab struct {
	t     *testing.T
	ctx   context.Context
	vp    chromeViewport
	shots *screens
}

func (c *chromeRun) newTab(t *testing.T) *chromeTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Opening the tab binds it to ctx, so this first Do has no timeout of
	// its own; the browser's budget bounds it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tb := &chromeTab{t: t, ctx: ctx, vp: c.vp, shots: c.shots}
	emulate := chromedp.EmulateViewport(c.vp.width, c.vp.height)
	if c.vp.mobile {
		emulate = chromedp.EmulateViewport(c.vp.width, c.vp.height,
			chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	tb.do("emulate the viewport", emulate)
	return tb
}

// fatalf ends the test with the page it failed on, saved as a screenshot
// when the browser still answers.
func (tb *chromeTab) fatalf(format string, args ...any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	where, _ := chromedp.Run(ctx, chromedp.Location())
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		name := tb.shots.path("FAILED-"+filepath.Base(tb.t.Name()), tb.vp)
		if os.WriteFile(name, png, 0o644) == nil {
			where += " (screenshot " + filepath.Base(name) + ")"
		}
	}
	tb.t.Fatalf("%s\nat %s", fmt.Sprintf(format, args...), where)
}

// do runs actions within chromeActionTimeout.
func (tb *chromeTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, chromeActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fatalf("%s: %v", what, err)
	}
}

// navigate loads u and waits for the page, through any redirects.
func (tb *chromeTab) navigate(u string) {
	tb.t.Helper()
	tb.do("navigate to "+u, chromedp.Navigate(u))
}

// submit runs trigger (a click, a key) and waits for the page it leads to,
// through any redirects.
func (tb *chromeTab) submit(what string, trigger chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, chromeActionTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, trigger)); err != nil {
		tb.fatalf("%s: no new page loaded: %v", what, err)
	}
}

// waitFor polls a JavaScript condition until it holds.
func (tb *chromeTab) waitFor(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(chromeActionTimeout)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.fatalf("waiting for %s: %s stayed false (%v)", what, expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageState is what the tests read from a page: its structure, never its
// wording, which is translated and restyled.
type pageState struct {
	URL     string                `json:"url"`
	Path    string                `json:"path"`
	Lang    string                `json:"lang"`    // of <html>
	Focused string                `json:"focused"` // name, else id, else tag of document.activeElement
	Alerts  int                   `json:"alerts"`  // visible [role=alert] elements
	Inputs  map[string]inputState `json:"inputs"`  // every named input but hidden ones (by type or attribute)
	Buttons []string              `json:"buttons"` // name=value of each button
	Links   []string              `json:"links"`   // href attribute of each link
	QR      bool                  `json:"qr"`      // a data:image/png image, loaded and shown
	OTPAuth string                `json:"otpauth"` // the otpauth:// link, if any
	Pre     []string              `json:"pre"`     // text of each <pre>
	Text    string                `json:"text"`    // the page's visible text

	// The page's width and the viewport's. Not innerWidth: a phone's
	// browser widens its viewport to fit a page that overflows, so
	// scrollWidth <= innerWidth would always hold there.
	ScrollWidth float64 `json:"scrollWidth"`
	ClientWidth float64 `json:"clientWidth"`
}

type inputState struct {
	Type         string `json:"type"`
	Autocomplete string `json:"autocomplete"`
	Inputmode    string `json:"inputmode"`
	Value        string `json:"value"`
	// Visible: rendered with a size and inside the viewport's width.
	Visible bool `json:"visible"`
	// Narrow: a text, email or password field narrower than its form, as
	// one the stylesheet forgot is.
	Narrow bool `json:"narrow"`
}

const pageStateJS = `(() => {
  const shown = (el) => {
    const r = el.getBoundingClientRect(), st = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && st.visibility !== "hidden" && st.display !== "none" &&
      r.left >= 0 && r.right <= document.documentElement.clientWidth + 0.5;
  };
  const a = document.activeElement;
  const inputs = {};
  for (const el of document.querySelectorAll("input[name], select[name], textarea[name]")) {
    if (el.type === "hidden" || el.hidden) continue;
    inputs[el.name] = {type: el.type, autocomplete: el.getAttribute("autocomplete") || "",
      inputmode: el.getAttribute("inputmode") || "", value: el.value, visible: shown(el),
      narrow: ["text", "email", "password"].includes(el.type) && !!el.form &&
        el.getBoundingClientRect().width < el.form.getBoundingClientRect().width - 1};
  }
  const qr = [...document.querySelectorAll('img[src^="data:image/png"]')].some((img) => img.complete && img.naturalWidth > 0 && shown(img));
  const otp = document.querySelector('a[href^="otpauth://"]');
  return {
    url: location.href, path: location.pathname, lang: document.documentElement.lang,
    focused: a && a !== document.body ? (a.name || a.id || a.tagName.toLowerCase()) : "",
    alerts: [...document.querySelectorAll('[role=alert]')].filter(shown).length,
    inputs,
    buttons: [...document.querySelectorAll("button")].map((b) => b.name + "=" + b.value),
    links: [...document.querySelectorAll("a[href]")].map((l) => l.getAttribute("href")),
    qr, otpauth: otp ? otp.getAttribute("href") : "",
    pre: [...document.querySelectorAll("pre")].map((p) => p.textContent),
    text: document.body ? document.body.innerText : "",
    scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
  };
})()`

func (tb *chromeTab) state() pageState {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, chromeActionTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](pageStateJS))
	if err != nil {
		tb.fatalf("read the page: %v", err)
	}
	return s
}

// shot saves a screenshot of the whole page as name and checks the layout:
// nothing scrolls sideways, every input is on screen, and text fields
// span their form. It returns the page's state.
func (tb *chromeTab) shot(name string) pageState {
	tb.t.Helper()
	s := tb.state()
	ctx, cancel := context.WithTimeout(tb.ctx, chromeActionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(tb.shots.path(name, tb.vp), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	// The browser asks for English (--lang), so the screenshots compare.
	if !strings.HasPrefix(s.Lang, "en") {
		tb.t.Errorf("%s: page language %q, want en", name, s.Lang)
	}
	if s.ScrollWidth > s.ClientWidth || s.ClientWidth > float64(tb.vp.width) {
		tb.t.Errorf("%s at %s: the page scrolls sideways (scrollWidth %v, viewport %v)", name, tb.vp.name, s.ScrollWidth, s.ClientWidth)
	}
	for n, in := range s.Inputs {
		if !in.Visible {
			tb.t.Errorf("%s at %s: input %q is hidden or outside the viewport", name, tb.vp.name, n)
		}
		if in.Narrow {
			tb.t.Errorf("%s at %s: input %q is narrower than its form", name, tb.vp.name, n)
		}
	}
	return s
}

// signIn types the password step with the keyboard only, as a person who
// never touches the mouse: the username field has focus on arrival, Tab
// goes to the password, Enter submits.
func (tb *chromeTab) signIn(name, username, password string) {
	tb.t.Helper()
	tb.waitFor("focus on the username field", `document.activeElement && document.activeElement.name === "username"`)
	s := tb.shot(name)
	if s.Path != "/login" {
		tb.fatalf("%s: got %s, want the /login page", name, s.URL)
	}
	if got := s.Inputs["username"].Autocomplete; got != "username" {
		tb.t.Errorf("%s: username autocomplete %q, want username", name, got)
	}
	if in := s.Inputs["password"]; in.Type != "password" || in.Autocomplete != "current-password" {
		tb.t.Errorf("%s: password field type %q autocomplete %q, want password, current-password", name, in.Type, in.Autocomplete)
	}
	tb.do("type the username", chromedp.KeyEvent(username), chromedp.KeyEvent(kb.Tab))
	if got := tb.state().Focused; got != "password" {
		tb.fatalf("%s: Tab from the username went to %q, want the password field", name, got)
	}
	tb.do("type the password", chromedp.KeyEvent(password))
	tb.submit("Enter on the password", chromedp.KeyEvent(kb.Enter))
}

// enterCode types a code into the focused code field and presses Enter.
func (tb *chromeTab) enterCode(name, code string) {
	tb.t.Helper()
	tb.waitFor("focus on the code field", `document.activeElement && document.activeElement.name === "code"`)
	tb.do("type the code", chromedp.KeyEvent(code))
	tb.submit("Enter on the code", chromedp.KeyEvent(kb.Enter))
}

// codePage checks the TOTP page: the code field takes one-time codes from
// a numeric keypad, and an enrolment page shows the QR code and the
// otpauth:// link, whose key it returns (nil when enrol is false and the
// page rightly shows no enrolment material).
func (tb *chromeTab) codePage(name, username string, enrol bool) *otp.Key {
	tb.t.Helper()
	tb.waitFor("focus on the code field", `document.activeElement && document.activeElement.name === "code"`)
	s := tb.shot(name)
	if s.Path != "/login/totp" {
		tb.fatalf("%s: got %s, want /login/totp", name, s.URL)
	}
	if in := s.Inputs["code"]; in.Autocomplete != "one-time-code" || in.Inputmode != "numeric" {
		tb.t.Errorf("%s: code field autocomplete %q inputmode %q, want one-time-code, numeric", name, in.Autocomplete, in.Inputmode)
	}
	if !enrol {
		if s.QR || s.OTPAuth != "" {
			tb.t.Errorf("%s: a returning login shows enrolment material (QR %v, link %q)", name, s.QR, s.OTPAuth)
		}
		return nil
	}
	if !s.QR {
		tb.t.Errorf("%s: no QR code image shown", name)
	}
	key, err := otp.NewKeyFromURL(s.OTPAuth)
	if err != nil {
		tb.fatalf("%s: otpauth link %q: %v", name, s.OTPAuth, err)
	}
	if key.AccountName() != username {
		tb.t.Errorf("%s: otpauth account %q, want %q", name, key.AccountName(), username)
	}
	return key
}

// recoveryCodes checks the page after an enrolment (ten codes and a link
// that continues the authorization request) and follows that link.
func (tb *chromeTab) recoveryCodes(name string) {
	tb.t.Helper()
	s := tb.shot(name)
	codes := map[string]bool{}
	for _, c := range recoveryCodeText.FindAllString(s.Text, -1) {
		codes[c] = true
	}
	if len(codes) != 10 {
		tb.fatalf("%s: got %d recovery codes on the page, want 10\n%s", name, len(codes), s.Text)
	}
	if !hasPrefixIn(s.Links, "data:text/plain") {
		tb.t.Errorf("%s: no download link for the codes in %q", name, s.Links)
	}
	if !hasPrefixIn(s.Links, "/oauth2/auth?auth_request=") {
		tb.fatalf("%s: no continue link to the authorization request in %q", name, s.Links)
	}
	tb.submit("continue after the recovery codes", chromedp.Click(chromedp.CSS(`a[href^="/oauth2/auth?auth_request="]`)))
}

var recoveryCodeText = regexp.MustCompile(`\b[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}\b`)

// consent checks the consent page and allows.
func (tb *chromeTab) consent(name string) {
	tb.t.Helper()
	s := tb.shot(name)
	if s.Path != "/consent" || !has(s.Buttons, "decision=allow") || !has(s.Buttons, "decision=deny") {
		tb.fatalf("%s: got %s with buttons %q, want /consent with allow and deny", name, s.URL, s.Buttons)
	}
	tb.submit("allow", chromedp.Click(chromedp.CSS(`button[name=decision][value=allow]`)))
}

func hasPrefixIn(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// demoFlow is the README's demo in a browser: `twostep demo`, its start
// page, the first login with enrolment, the recovery codes, consent, the
// claims the demo application received, and signing out.
func (c *chromeRun) demoFlow(t *testing.T) {
	issuer, password, _ := startDemo(t)
	tb := c.newTab(t)

	tb.navigate(issuer + "/demo/")
	s := tb.shot("demo-start")
	if !hasPrefixIn(s.Links, "/demo/login") {
		tb.fatalf("demo start page: no link to /demo/login in %q", s.Links)
	}
	tb.submit("start the demo login", chromedp.Click(chromedp.CSS(`a[href="/demo/login"]`)))

	// A mouse (or a finger) this time: fill the fields by selector.
	s = tb.shot("demo-login")
	if s.Path != "/login" {
		tb.fatalf("demo login: got %s, want /login", s.URL)
	}
	tb.do("fill the login form",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), demoUser),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password))
	tb.submit("submit the password", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))

	key := tb.codePage("demo-enrol", demoUser, true)
	tb.do("type the code", chromedp.SendKeys(chromedp.CSS(`input[name=code]`), codeAt(t, key, time.Now())))
	tb.submit("submit the code", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	tb.recoveryCodes("demo-recovery-codes")
	tb.consent("demo-consent")

	s = tb.shot("demo-claims")
	if s.Path != "/demo/callback" || len(s.Pre) == 0 {
		tb.fatalf("after consent: got %s, want the demo's claims", s.URL)
	}
	var claims struct {
		AMR   []string `json:"amr"`
		Email string   `json:"email"`
	}
	if err := json.Unmarshal([]byte(s.Pre[0]), &claims); err != nil {
		tb.fatalf("demo claims %q: %v", s.Pre[0], err)
	}
	if !has(claims.AMR, "pwd") || !has(claims.AMR, "otp") || claims.Email != "demo@example.com" {
		t.Errorf("demo claims: got amr %v email %q, want pwd and otp, demo@example.com", claims.AMR, claims.Email)
	}

	// Signing out with the ID token as hint needs no confirmation and
	// comes back to the demo; a new login asks for the password again.
	if !hasPrefixIn(s.Links, issuer+"/oauth2/logout?") {
		tb.fatalf("demo claims page: no sign-out link in %q", s.Links)
	}
	tb.submit("sign out", chromedp.Click(chromedp.CSS(`a[href^="`+issuer+`/oauth2/logout?"]`)))
	if s = tb.shot("demo-signed-out"); s.Path != "/demo/" {
		t.Errorf("after signing out: got %s, want /demo/", s.URL)
	}
	tb.navigate(issuer + "/demo/login")
	if s = tb.state(); s.Path != "/login" {
		t.Errorf("demo login after signing out: got %s, want /login", s.URL)
	}
}

// callbackServer is a registered application's redirect_uri: it records
// each callback's query and shows a small page.
type callbackServer struct {
	uri string
	got chan url.Values
}

func newCallbackServer(t *testing.T) *callbackServer {
	t.Helper()
	got := make(chan url.Values, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		got <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><meta name="viewport" content="width=device-width, initial-scale=1">`+
			`<title>Test application</title><h1>Test application</h1><p>The callback arrived; the test exchanges the code.</p>`)
	}))
	t.Cleanup(srv.Close)
	return &callbackServer{uri: srv.URL + "/callback", got: got}
}

// callback returns the query of the next callback.
func (cb *callbackServer) callback(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-cb.got:
		return q
	case <-time.After(chromeActionTimeout):
		t.Fatal("the application received no callback")
		return nil
	}
}

// newChromeClient registers an application whose redirect_uri is cb's,
// with `twostep client add`, and sets it up with go-oidc and x/oauth2.
func newChromeClient(t *testing.T, in *instance, cb *callbackServer) *relyingParty {
	t.Helper()
	out, err := in.cli(t, "", "client", "add", "--id", "browser-app", "--name", "Browser Test App",
		"--redirect-uri", cb.uri, "--json")
	if err != nil {
		t.Fatalf("client add: %v: %s", err, out)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil {
		t.Fatalf("client add --json printed %q: %v", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chromeActionTimeout)
	defer cancel()
	provider, err := gooidc.NewProvider(ctx, in.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		provider: provider,
		config: oauth2.Config{
			ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, Endpoint: provider.Endpoint(),
			RedirectURL: cb.uri, Scopes: []string{"openid", "profile", "email"},
		},
		verifier: provider.Verifier(&gooidc.Config{ClientID: creds.ClientID}),
	}
}

// finish checks the callback the browser brought to the application and
// redeems its code as the application would: x/oauth2 with PKCE, then
// go-oidc verifying the ID token. It returns the token's amr.
func finish(t *testing.T, tb *chromeTab, name string, cb *callbackServer, rp *relyingParty, ar authRequest) []string {
	t.Helper()
	s := tb.shot(name)
	if !strings.HasPrefix(s.URL, cb.uri+"?") {
		tb.fatalf("%s: got %s, want the application's redirect_uri", name, s.URL)
	}
	q := cb.callback(t)
	if q.Get("state") != ar.state || q.Get("code") == "" {
		t.Fatalf("%s: callback got state %q code %q error %q, want state %q and a code",
			name, q.Get("state"), q.Get("code"), q.Get("error"), ar.state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chromeActionTimeout)
	defer cancel()
	tok, err := rp.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("%s: exchange: %v", name, err)
	}
	var claims struct {
		AMR               []string `json:"amr"`
		PreferredUsername string   `json:"preferred_username"`
	}
	if err := verifyIDToken(t, rp, tok, ar).Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.PreferredUsername != "alice" {
		t.Errorf("%s: preferred_username %q, want alice", name, claims.PreferredUsername)
	}
	return claims.AMR
}

// clientFlow is a registered application's flow, typed with the keyboard
// only: the first login with enrolment, recovery codes, consent and the
// callback; then a returning login in a fresh browser context, which
// shows no enrolment material and no consent; then a sign-out confirmed on
// twostep's own page.
func (c *chromeRun) clientFlow(t *testing.T) {
	in := startServer(t, "", nil)
	addUser(t, in, "alice", "correct horse battery staple")
	cb := newCallbackServer(t)
	rp := newChromeClient(t, in, cb)

	tb := c.newTab(t)
	ar := rp.newAuthRequest()
	tb.navigate(ar.url)
	tb.signIn("client-login", "alice", "correct horse battery staple")
	key := tb.codePage("client-enrol", "alice", true)
	enrolledAt := time.Now()
	tb.enterCode("client-enrol", codeAt(t, key, enrolledAt))
	tb.recoveryCodes("client-recovery-codes")
	tb.consent("client-consent")
	if amr := finish(t, tb, "client-callback", cb, rp, ar); !has(amr, "otp") || !has(amr, "pwd") {
		t.Errorf("first login: amr %v, want pwd and otp", amr)
	}

	tb2 := c.newTab(t)
	ar2 := rp.newAuthRequest()
	tb2.navigate(ar2.url)
	tb2.signIn("client-return-login", "alice", "correct horse battery staple")
	tb2.codePage("client-return-code", "alice", false)
	// A code of a later step than the enrolment's, which was used once and
	// must not be again: the next step's (within the one-step skew) unless
	// the clock has already moved on.
	returnAt := time.Now()
	if returnAt.Unix()/30 <= enrolledAt.Unix()/30 {
		returnAt = enrolledAt.Add(30 * time.Second)
	}
	tb2.enterCode("client-return-code", codeAt(t, key, returnAt))
	if amr := finish(t, tb2, "client-return-callback", cb, rp, ar2); !has(amr, "otp") {
		t.Errorf("returning login: amr %v, want otp", amr)
	}

	// Signing out without an ID token asks first.
	tb2.navigate(in.issuer + "/oauth2/logout")
	s := tb2.shot("client-logout-confirm")
	if len(s.Buttons) == 0 {
		tb2.fatalf("logout page: no button to confirm")
	}
	tb2.submit("confirm the sign-out", chromedp.Click(chromedp.CSS(`form[action="/oauth2/logout"] button`)))
	tb2.shot("client-signed-out")
	tb2.navigate(rp.newAuthRequest().url)
	if s = tb2.state(); s.Path != "/login" {
		t.Errorf("authorize after signing out: got %s, want /login", s.URL)
	}
}

// errorFlow: a wrong password and a wrong code each leave the user on
// their page with a message, and the right ones still work after; a bad
// authorization request shows twostep's error page.
func (c *chromeRun) errorFlow(t *testing.T) {
	in := startServer(t, "", nil)
	addUser(t, in, "bob", "a long enough password")
	cb := newCallbackServer(t)
	rp := newChromeClient(t, in, cb)

	tb := c.newTab(t)
	tb.navigate(rp.newAuthRequest().url)
	tb.signIn("errors-login", "bob", "not his password")
	s := tb.shot("errors-wrong-password")
	if s.Path != "/login" || s.Alerts == 0 {
		tb.fatalf("wrong password: got %s with %d alerts, want /login with a role=alert message", s.URL, s.Alerts)
	}
	if got := s.Inputs["username"].Value; got != "bob" {
		t.Errorf("wrong password: username field holds %q, want bob kept", got)
	}
	// The username is kept, so the password field takes the focus.
	tb.waitFor("focus on the password field", `document.activeElement && document.activeElement.name === "password"`)
	tb.do("type the password again", chromedp.KeyEvent("a long enough password"))
	tb.submit("Enter on the password", chromedp.KeyEvent(kb.Enter))

	key := tb.codePage("errors-enrol", "bob", true)
	tb.enterCode("errors-enrol", wrongCode(t, enrolment{key: key}))
	s = tb.shot("errors-wrong-code")
	if s.Path != "/login/totp" || s.Alerts == 0 {
		tb.fatalf("wrong code: got %s with %d alerts, want /login/totp with a role=alert message", s.URL, s.Alerts)
	}
	tb.enterCode("errors-wrong-code", codeAt(t, key, time.Now()))
	tb.recoveryCodes("errors-recovery-codes")

	// An unknown client cannot be redirected to: twostep shows the error.
	ctx, cancel := context.WithTimeout(tb.ctx, chromeActionTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(in.issuer+"/oauth2/auth?"+url.Values{
		"client_id": {"no-such-app"}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {cb.uri}, "state": {"abcdefgh"},
	}.Encode()))
	if err != nil {
		tb.fatalf("unknown client: %v", err)
	}
	if s = tb.shot("errors-unknown-client"); resp.Status != http.StatusBadRequest || !strings.HasPrefix(s.URL, in.issuer+"/") {
		t.Errorf("unknown client: got %d at %s, want a 400 page on twostep", resp.Status, s.URL)
	}
	select {
	case q := <-cb.got:
		t.Errorf("unknown client: the redirect_uri got %v", q)
	default:
	}
}
