package carrier

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// base returns the API's base URL, or def.
func base(api API, def string) string {
	if api.BaseURL != "" {
		return strings.TrimRight(api.BaseURL, "/")
	}
	return def
}

// creds reads the credentials named by api (or the default variable
// names) from the environment. The user part may be optional (Twilio's
// start message names the account).
func creds(api API, userEnv, secretEnv string, userOptional bool) (user, secret string, err error) {
	if api.UserEnv != "" {
		userEnv = api.UserEnv
	}
	if api.SecretEnv != "" {
		secretEnv = api.SecretEnv
	}
	if userEnv != "" {
		user = os.Getenv(userEnv)
	}
	secret = os.Getenv(secretEnv)
	if secret == "" || userEnv != "" && user == "" && !userOptional {
		names := secretEnv
		if userEnv != "" && !userOptional {
			names = userEnv + " and " + secretEnv
		}
		return "", "", fmt.Errorf("%w: set %s", ErrNoCredentials, names)
	}
	return user, secret, nil
}

// do sends a hang-up and checks for a 2xx answer.
func do(hc *http.Client, req *http.Request) error { return doAs(hc, req, ErrHangup) }

// doAs sends req and checks for a 2xx answer; a failure wraps wrap.
func doAs(hc *http.Client, req *http.Request, wrap error) error {
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", wrap, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s %s: %s: %s", wrap, req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
