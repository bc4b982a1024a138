//! The identity provider's pages: sign-in, consent, errors and logout.
//! Each form posts back to the provider with a form token bound to the
//! browser's own cookie (CSRF); the inputs are named and marked up so
//! password managers fill them in.

use maud::{html, Markup};

use super::{document, Page, Style};

/// Where the sign-in and consent forms post.
pub const AUTHORIZE_PATH: &str = "/api/2/idp/authorize";
/// Where the logout confirmation posts.
pub const LOGOUT_PATH: &str = "/api/2/idp/logout";

pub static STYLE: Style = Style::new(
    ":root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;\
--line:#d0d7de;--accent:#0b63ce;--bad:#b42318}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;\
--card:#161b22;--line:#30363d;--accent:#4493f8;--bad:#f97066}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);\
color:var(--fg);font:16px/1.5 system-ui,sans-serif;padding:1em}\
main{width:100%;max-width:24em;background:var(--card);border:1px solid var(--line);\
border-radius:12px;padding:2em}\
h1{font-size:1.5em;margin:0 0 .25em}p{margin:.5em 0}.sub{color:var(--muted);margin-bottom:1.5em}\
label{display:block;font-weight:600;margin:1em 0 .25em}\
input{width:100%;font:inherit;padding:.6em .7em;border:1px solid var(--line);border-radius:8px;\
background:var(--bg);color:var(--fg)}\
button{font:inherit;font-weight:600;width:100%;margin-top:1.5em;padding:.7em;border:0;\
border-radius:8px;background:var(--accent);color:#fff;cursor:pointer}\
button.secondary{background:transparent;color:var(--fg);border:1px solid var(--line);margin-top:.75em}\
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
.error{color:var(--bad);border:1px solid var(--bad);border-radius:8px;padding:.5em .75em}\
ul{padding-left:1.25em}a{color:var(--accent)}.brand{font-weight:700;letter-spacing:.02em;color:var(--muted)}",
);

/// What a sign-in form carries besides its inputs.
pub struct Form<'a> {
    /// The client's name, as it asked to be called.
    pub client_name: &'a str,
    /// The authorization request, posted back as hidden fields.
    pub params: &'a [(&'static str, String)],
    pub form_token: &'a str,
    /// The origin of the client's redirect URI: the form may end there.
    pub redirect_origin: &'a str,
}

fn hidden(form: &Form<'_>, action: &str) -> Markup {
    html! {
        @for (name, value) in form.params {
            input type="hidden" name=(name) value=(value);
        }
        input type="hidden" name="form_token" value=(form.form_token);
        input type="hidden" name="action" value=(action);
    }
}

fn alert(error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
    }
}

/// The first step: username (or e-mail) and password.
/// `forgot` is where to ask for a reset link, when mail can be sent.
pub fn login(
    form: &Form<'_>,
    login_hint: Option<&str>,
    error: Option<&str>,
    forgot: Option<&str>,
) -> Page {
    document(
        "Sign in · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Sign in" }
                p.sub { "to continue to " strong { (form.client_name) } }
                (alert(error))
                form method="post" action=(AUTHORIZE_PATH) {
                    (hidden(form, "login"))
                    label for="username" { "Username or e-mail" }
                    input #username name="username" type="text" autocomplete="username"
                        autocapitalize="none" spellcheck="false" required autofocus
                        value=[login_hint];
                    label for="password" { "Password" }
                    input #password name="password" type="password"
                        autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
                @if let Some(forgot) = forgot {
                    p.sub { a href=(forgot) { "Forgot your password?" } }
                }
            }
        },
    )
    .allowing_form_redirect_to(&STYLE, form.redirect_origin)
}

/// The second step: a code from the authenticator app, or a recovery
/// code. `ticket` proves the first step.
pub fn second_factor(form: &Form<'_>, ticket: &str, error: Option<&str>) -> Page {
    document(
        "Two-factor authentication · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Two-factor authentication" }
                p.sub { "Enter the code from your authenticator app, or a recovery code." }
                (alert(error))
                form method="post" action=(AUTHORIZE_PATH) {
                    (hidden(form, "otp"))
                    input type="hidden" name="ticket" value=(ticket);
                    label for="otp" { "Code" }
                    input #otp name="otp" type="text" inputmode="numeric"
                        autocomplete="one-time-code" autocapitalize="none" spellcheck="false"
                        maxlength="16" required autofocus;
                    button type="submit" { "Verify" }
                }
            }
        },
    )
    .allowing_form_redirect_to(&STYLE, form.redirect_origin)
}

/// A third-party client asks to act for the user.
pub fn consent(form: &Form<'_>, user: &str, scopes: &[&str]) -> Page {
    let explain = |scope: &str| match scope {
        "openid" => "Know who you are (your account id)",
        "profile" => "See your login name",
        "email" => "See your e-mail address",
        "offline_access" => "Stay signed in when you are away",
        _ => "",
    };
    document(
        "Allow access · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Allow " (form.client_name) "?" }
                p.sub { "Signed in as " strong { (user) } }
                p { (form.client_name) " asks to:" }
                ul {
                    @for scope in scopes {
                        li { (explain(scope)) " (" code { (scope) } ")" }
                    }
                }
                form method="post" action=(AUTHORIZE_PATH) {
                    (hidden(form, "consent"))
                    button type="submit" name="decision" value="allow" { "Allow" }
                    button.secondary type="submit" name="decision" value="deny" { "Deny" }
                }
            }
        },
    )
    .allowing_form_redirect_to(&STYLE, form.redirect_origin)
}

/// A request that cannot go back to the application.
pub fn error(message: &str) -> Page {
    document(
        "Cannot sign in · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Cannot sign in" }
                p.error role="alert" { (message) }
                p { "Go back to the application and try again." }
            }
        },
    )
}

/// Logout: asks first when the request did not prove where it came from.
pub fn logout(form_token: Option<&str>) -> Page {
    document(
        "Sign out · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                @if let Some(token) = form_token {
                    h1 { "Sign out?" }
                    form method="post" action=(LOGOUT_PATH) {
                        input type="hidden" name="form_token" value=(token);
                        button type="submit" { "Sign out" }
                    }
                } @else {
                    h1 { "You are signed out" }
                    p { "You can close this window." }
                }
            }
        },
    )
}
