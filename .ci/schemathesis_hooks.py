"""schemathesis hooks for `.ci/schemathesis.sh` (SCHEMATHESIS_HOOKS).

A schema can say what a value looks like but not which values exist: a
generated image name, data center id or role name has the right form and
names nothing, and the server is right to refuse it (422); so is a
checksum that is not the content's, or a current password that is not the
current one. These hooks put what is true (read from the server by the
script, given here through the environment) where a valid request needs
it, and make a client's registration hold together where the schema
cannot say how, so that "a schema-valid request is accepted" tests what
it means. They change only valid (positive) cases, and nothing else in
them; and they keep the run's own API key and web app from being deleted
or changed under it.

Two failures are not counted. One is the lockout's 429 (1004) to an
invalid-credentials probe. The probes guess passwords from 127.0.0.1, and
after enough of them the address is locked out of password sign-in, as
designed and documented (every credentialed operation lists 429). The
other is a wrong TOTP code confirming an enrolment: the run cannot know
the code of the moment.
"""

import hashlib
import os
import uuid

import schemathesis

IMAGE = os.environ["NEPHELE_ST_IMAGE"]
DATACENTER = os.environ["NEPHELE_ST_DATACENTER"]
ADMIN_ID = os.environ["NEPHELE_ST_ADMIN_ID"]
ADMIN_PASSWORD = os.environ["NEPHELE_ST_ADMIN_PASSWORD"]
RUN_KEY_ID = os.environ["NEPHELE_ST_API_KEY_ID"]
CLIENT_ID = os.environ["NEPHELE_ST_CLIENT_ID"]
REDIRECT_URI = os.environ["NEPHELE_ST_REDIRECT_URI"]
ROLE = "admin"

# (method, path) -> the body fields that name something that must exist.
REFERENCES = {
    ("POST", "/api/v2/instances"): {"image": IMAGE, "datacenter": DATACENTER},
    ("POST", "/api/v2/users"): {"datacenterId": DATACENTER},
    ("PUT", "/api/v2/users/{id}"): {"datacenterId": DATACENTER},
    ("PATCH", "/api/v2/users/{id}"): {"datacenterId": DATACENTER},
}
# The authorization endpoint's request names a client and one of its
# redirect URIs (in the query for GET, in the form for POST).
SIGN_IN = {("GET", "/api/2/idp/authorize"), ("POST", "/api/2/idp/authorize")}
CLIENTS = {("POST", "/api/2/clients"), ("PUT", "/api/2/clients/{client_id}")}
# The operations whose body has `roles`, a list of role names.
WITH_ROLES = {
    ("POST", "/api/v2/users"),
    ("PUT", "/api/v2/users/{id}"),
    ("PATCH", "/api/v2/users/{id}"),
    ("POST", "/api/2/clients"),
    ("PUT", "/api/2/clients/{client_id}"),
}


def is_negative(case):
    # The coverage phase marks the part it made invalid, not the case.
    return case.meta is not None and (
        case.meta.generation.mode.is_negative
        or any(c.mode.is_negative for c in case.meta.components.values())
    )


@schemathesis.hook
def map_case(ctx, case):
    # A negative case is refused whatever it names; changing it could make
    # it valid.
    if is_negative(case):
        return case
    key = (case.operation.method.upper(), case.operation.path)
    body = case.body if isinstance(case.body, dict) else None
    if body is not None:
        for field, value in REFERENCES.get(key, {}).items():
            if isinstance(body.get(field), str):
                body[field] = value
        roles = body.get("roles")
        if key in WITH_ROLES and isinstance(roles, list) and roles and all(isinstance(r, str) for r in roles):
            # The admin's own roles among them, so that a change to the
            # admin it runs as keeps its rights.
            body["roles"] = [ROLE]
    if key in CLIENTS and body is not None:
        registration_holds_together(body, key[0])
    # A page token is the server's (`nextPage`); a generated one names no page.
    if isinstance(case.query, dict) and "pageToken" in case.query:
        del case.query["pageToken"]
    return case


def registration_holds_together(body, method):
    """What a client's `data` must say together, which its schema cannot:
    the authorization code grant needs a redirect URI, a public client has
    no secret for the password and client-credentials grants, and only the
    root organization's clients are first-party. (A PUT's client may be
    public: its grants are kept to those every client may have.)"""
    data = body.get("data")
    if not isinstance(data, dict):
        return
    public = method == "PUT" or body.get("token_endpoint_auth_method") == "none"
    grants = data.get("grant_types")
    if public and isinstance(grants, list):
        data["grant_types"] = [g for g in grants if g not in ("password", "client_credentials")]
        grants = data["grant_types"]
    code_flow = "authorization_code" in grants if isinstance(grants, list) else public
    if code_flow and not data.get("redirect_uris"):
        data["redirect_uris"] = [REDIRECT_URI]
    if data.get("first_party") is True and (method == "PUT" or body.get("tenant_id") is not None):
        data["first_party"] = False


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # The run's own API key stays what it is: deleting or regenerating it
    # would leave every later request unauthenticated. (Every phase sends
    # through here; the stateful one takes ids from earlier answers.)
    if case.operation.path.startswith("/api/v2/api-keys/{id}") and case.path_parameters.get("id") == RUN_KEY_ID:
        case.path_parameters["id"] = str(uuid.uuid4())
    # So does the web app the authorization endpoint's cases name.
    if case.operation.path.startswith("/api/2/clients/{client_id}") and case.path_parameters.get("client_id") == CLIENT_ID:
        case.path_parameters["client_id"] = str(uuid.uuid4())
    key = (case.operation.method.upper(), case.operation.path)
    if not is_negative(case) and key in SIGN_IN:
        # Copies: the coverage phase makes its invalid cases from this
        # one's parameters, which must keep naming nothing.
        app = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI}
        if isinstance(case.query, dict):
            case.query = {**case.query, **app}
        if isinstance(case.body, dict):
            case.body = {**case.body, **app}
    # Removing your TOTP needs your password.
    if not is_negative(case) and key == ("DELETE", "/api/v2/me/mfa/totp") and isinstance(case.body, dict):
        case.body["password"] = ADMIN_PASSWORD
    # Your own password needs the current one; keep it unchanged so the
    # run's administrator stays who it is.
    if (
        not is_negative(case)
        and (case.operation.method.upper(), case.operation.path) == ("POST", "/api/v2/users/{id}/password")
        and case.path_parameters.get("id") == ADMIN_ID
        and isinstance(case.body, dict)
    ):
        case.body["currentPassword"] = ADMIN_PASSWORD
        case.body["password"] = ADMIN_PASSWORD
    # An upload's `sha256` is a checksum of what is sent: the hash of the
    # content, not any 64 hex digits. (Set here, where the content is
    # final; a negative case is left as it is.)
    if not is_negative(case) and (case.operation.method.upper(), case.operation.path) == (
        "POST",
        "/api/notary/v2/stored-files",
    ):
        body = case.body if isinstance(case.body, dict) else None
        content = body.get("file") if body is not None else case.body
        content = getattr(content, "data", content)  # schemathesis's `Binary` wraps bytes
        if isinstance(content, str):
            content = content.encode()
        if isinstance(content, bytes):
            digest = hashlib.sha256(content).hexdigest()
            for claims in (case.query, body):
                if isinstance(claims, dict) and isinstance(claims.get("sha256"), str):
                    claims["sha256"] = digest
            # The case stays as valid as it was, but schemathesis (4.32.5,
            # pinned) re-judges a changed body holding bytes as invalid:
            # have it take the case as it judged it.
            case._sync_validated_hashes()


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    # `response` is the authenticated request's; the probe's answer is only
    # in the message. The lockout is the server's one 429.
    if failure.code == "ST401" and "got `429 " in failure.message:
        return False
    # A TOTP code is valid for 30 s of a secret the run never sees (the
    # enrolment's answer shows it once): a wrong one is refused, rightly.
    wrong_code = (
        failure.code == "ST202"
        and (case.operation.method.upper(), case.operation.path) == ("POST", "/api/v2/me/mfa/totp/confirm")
        and response is not None
        and response.status_code == 422
        and "is not a current code" in response.text
    )
    if wrong_code:
        return False
    # A one-time link's token is 256 random bits mailed to one user: a
    # generated one names no link, and its page rightly says so (400); a
    # generated form token is not the browser's (403).
    no_such_link = (
        failure.code == "ST202"
        and case.operation.path in ("/api/2/idp/activate", "/api/2/idp/reset")
        and response is not None
        and (
            (response.status_code == 400 and "This link is not valid" in response.text)
            or (response.status_code == 403 and "This form has expired" in response.text)
        )
    )
    return not no_such_link
