//! The pages of the one-time links sent by mail: an invited user sets a
//! first password, a user who forgot theirs sets a new one. The form
//! posts back with the link's token and a form token bound to the
//! browser's cookie (as the sign-in forms do); its inputs are marked up
//! so password managers offer a new password and file it under the
//! right account.

use maud::html;

use super::signin::STYLE;
use super::{document, Page};

/// What a link's form is for, in the words its page uses.
pub struct LinkPage<'a> {
    /// Where the form posts (the link's own path).
    pub action: &'a str,
    pub title: &'a str,
    pub intro: &'a str,
    pub button: &'a str,
}

/// The form: the new password twice.
pub fn password_form(
    page: &LinkPage<'_>,
    login: &str,
    token: &str,
    form_token: &str,
    error: Option<&str>,
) -> Page {
    document(
        &format!("{} · Nephele", page.title),
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { (page.title) }
                p.sub { (page.intro) " " strong { (login) } }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action=(page.action) {
                    input type="hidden" name="token" value=(token);
                    input type="hidden" name="form_token" value=(form_token);
                    input #username name="username" type="text" autocomplete="username"
                        value=(login) readonly hidden;
                    label for="password" { "New password" }
                    input #password name="password" type="password"
                        autocomplete="new-password" minlength="8" required autofocus;
                    label for="password_confirmation" { "New password, again" }
                    input #password_confirmation name="password_confirmation" type="password"
                        autocomplete="new-password" minlength="8" required;
                    button type="submit" { (page.button) }
                }
            }
        },
    )
}

/// The password is set.
pub fn done(login: &str) -> Page {
    document(
        "Password set · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Your password is set" }
                p { "Sign in as " strong { (login) } " with your new password." }
                p.sub { "Every earlier sign-in of this account has ended." }
            }
        },
    )
}

/// A link that does not work, and why as far as the holder may know.
pub fn unusable(message: &str) -> Page {
    document(
        "Link not valid · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "This link does not work" }
                p.error role="alert" { (message) }
                p { "Ask for a new link, or ask your administrator." }
            }
        },
    )
}

/// Asks for a reset link: the login or e-mail address.
pub fn forgot(action: &str, form_token: &str, login: Option<&str>, error: Option<&str>) -> Page {
    document(
        "Forgot your password? · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Forgot your password?" }
                p.sub { "We will send a link to choose a new one to the account's e-mail address." }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action=(action) {
                    input type="hidden" name="form_token" value=(form_token);
                    label for="login" { "Username or e-mail" }
                    input #login name="login" type="text" autocomplete="username"
                        autocapitalize="none" spellcheck="false" maxlength="320" required autofocus
                        value=[login];
                    button type="submit" { "Send the link" }
                }
            }
        },
    )
}

/// A reset link was asked for: the same words whether or not the
/// account exists.
pub fn forgot_sent() -> Page {
    document(
        "Check your mail · Nephele",
        &STYLE,
        html! {
            main {
                p.brand { "Nephele" }
                h1 { "Check your mail" }
                p { "If that is an account that may sign in, a link to choose a new password is on its way. It works once, for an hour." }
                p.sub { "No mail after a few minutes? Check the spam folder, or ask your administrator." }
            }
        },
    )
}
