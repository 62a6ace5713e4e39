// The account console: one page, a view per path. Every element is built with
// the DOM API (no innerHTML): nothing a user typed can become markup.

import {
  api, ApiError, currentSessionId, forget, refresh, signedIn, signIn, signOut, useToken,
} from "./api.js";
import { createPasskey, getPasskey, passkeyProblem, supported } from "./passkeys.js";

const main = document.getElementById("main");
const status = document.getElementById("status");
const nav = document.getElementById("nav");

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value !== false && value !== undefined) element.setAttribute(name, value);
  }
  element.append(...children.flat());
  return element;
}

function say(message, isError = false) {
  status.textContent = message;
  status.className = isError ? "error" : "";
}

function field(label, name, type = "text", extra = {}) {
  const id = `field-${name}`;
  return [h("label", { for: id }, label), h("input", { id, name, type, required: true, ...extra })];
}

// A form whose submit runs `action(values)`; errors are announced, not thrown.
function form(title, fields, submit, action) {
  const element = h("form", {}, h("h1", {}, title), ...fields, h("button", { type: "submit" }, submit));
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    say("");
    const values = Object.fromEntries(new FormData(element));
    try {
      await action(values);
    } catch (error) {
      fail(error);
    }
  });
  return element;
}

function show(...content) {
  main.replaceChildren(...content);
  nav.hidden = !signedIn();
  main.focus();
}

function go(path) {
  history.pushState({}, "", path);
  return route();
}

const token = () => new URLSearchParams(location.search).get("token") || "";

// -- views ---------------------------------------------------------------------

// A button that runs `action` and shows what went wrong, if anything.
function button(label, action, attributes = {}) {
  return h("button", { type: "button", ...attributes, onclick: () => {
    say("");
    return Promise.resolve().then(action).catch(fail);
  } }, label);
}

// What the console says for a provider sign-in that failed (the callback's ?problem=).
const PROBLEMS = {
  oidc_state: "That sign-in expired or was started in another browser. Please try again.",
  oidc_provider: "The provider did not sign you in. Please try again.",
  oidc_exchange: "The provider could not be reached. Please try again later.",
  oidc_token: "The provider's answer could not be verified. Please try again.",
  oidc_email_unverified: "The provider has not verified your email address, so no account was created.",
  oidc_account_exists: "An account already uses this email address. Sign in to it, then link the provider on the Linked accounts page.",
  oidc_linked_elsewhere: "That provider account is already linked to another account.",
  oidc_inactive: "This account is deactivated.",
};

function problemFromUrl() {
  const code = new URLSearchParams(location.search).get("problem");
  if (code) say(PROBLEMS[code] || "Sign-in failed. Please try again.", true);
}

async function providerButtons(next) {
  const providers = await api("/auth/oidc/providers", { auth: false }).catch(() => []);
  return providers.map((provider) => h("p", {}, button(provider.label, () => {
    location.assign(`/api/v1/auth/oidc/${encodeURIComponent(provider.name)}/authorize?next=${encodeURIComponent(next)}`);
  }, { class: "secondary" })));
}

async function signInView() {
  // A provider sign-in that needs the second step arrives with it in the fragment.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("mfa_token")) {
    history.replaceState({}, "", location.pathname);
    return secondStepView(fragment.get("mfa_token"), (fragment.get("methods") || "").split(","));
  }
  const providers = await providerButtons("/account");
  show(
    form("Sign in", [...field("Email", "email", "email", { autocomplete: "username webauthn" }),
      ...field("Password", "password", "password", { autocomplete: "current-password" })],
    "Sign in", async ({ email, password }) => {
      const result = await signIn("/auth/login", { email, password });
      if (result.mfa_required) return secondStepView(result.mfa_token, result.methods);
      return go("/account");
    }),
    supported() ? h("p", {}, button("Sign in with a passkey", async () => {
      // No email needed: the browser offers this site's passkeys (discoverable).
      const options = await api("/auth/passkeys/login/options", { method: "POST", auth: false });
      await signIn("/auth/passkeys/login", { credential: await getPasskey(options) });
      return go("/account");
    }, { class: "secondary", id: "passkey-signin" })) : "",
    ...providers,
    h("p", {}, h("a", { href: "/account/register" }, "Create an account"), " · ",
      h("a", { href: "/account/forgot" }, "Forgot your password?")),
  );
}

function secondStepView(mfaToken, methods = []) {
  const withPasskey = methods.includes("passkey") && supported() ? h("p", {}, button("Use a passkey", async () => {
    const options = await api("/auth/login/mfa/passkey/options",
      { method: "POST", body: { mfa_token: mfaToken }, auth: false });
    await signIn("/auth/login/mfa", { mfa_token: mfaToken, passkey: await getPasskey(options) });
    return go("/account");
  }, { id: "passkey-second-step" })) : "";
  if (!methods.includes("totp") && !methods.includes("recovery_code")) {
    return show(h("h1", {}, "Two-factor sign-in"), h("p", {}, "Confirm it is you with your passkey."),
      withPasskey);
  }
  show(
    withPasskey,
    form("Two-factor sign-in", [h("p", {}, "Enter the code from your authenticator app, or a recovery code."),
      ...field("Code", "code", "text", { inputmode: "numeric", autocomplete: "one-time-code" })],
    "Continue", async ({ code }) => {
      const digits = code.replace(/\s/g, "");
      const body = /^\d{6}$/.test(digits) ? { mfa_token: mfaToken, code: digits }
        : { mfa_token: mfaToken, recovery_code: code };
      await signIn("/auth/login/mfa", body);
      return go("/account");
    }),
  );
}

function registerView() {
  show(form("Create an account", [...field("Email", "email", "email", { autocomplete: "email" }),
    ...field("Username", "username", "text", { autocomplete: "username" }),
    ...field("Password", "password", "password", { autocomplete: "new-password", minlength: 12 })],
  "Create account", async (values) => {
    await api("/auth/register", { method: "POST", body: values, auth: false });
    show(h("h1", {}, "Check your email"),
      h("p", {}, "We sent a link to confirm your address. Then sign in."),
      h("a", { href: "/account/signin" }, "Sign in"));
  }));
}

async function tokenView(title, path, done) {
  show(h("h1", {}, title), h("p", {}, "Checking the link…"));
  try {
    await api(path, { method: "POST", body: { token: token() }, auth: false });
    show(h("h1", {}, title), h("p", {}, done), h("a", { href: "/account" }, "Continue"));
  } catch (error) {
    show(h("h1", {}, title));
    say(error.message, true);
  }
}

function forgotView() {
  show(form("Forgot your password?", [...field("Email", "email", "email", { autocomplete: "email" })],
    "Send a reset link", async (values) => {
      const data = await api("/auth/password-reset", { method: "POST", body: values, auth: false });
      say(data.detail);
    }));
}

function resetView() {
  show(form("Choose a new password", [...field("New password", "new_password", "password",
    { autocomplete: "new-password", minlength: 12 })], "Set password", async ({ new_password }) => {
    await api("/auth/password-reset/confirm",
      { method: "POST", body: { token: token(), new_password }, auth: false });
    forget();
    show(h("h1", {}, "Password changed"), h("p", {}, "Every session was signed out."),
      h("a", { href: "/account/signin" }, "Sign in"));
  }));
}

async function homeView() {
  const me = await api("/users/me");
  show(h("h1", {}, `Hello, ${me.username}`),
    h("dl", {}, h("dt", {}, "Email"), h("dd", { id: "email" }, me.email),
      h("dt", {}, "Email confirmed"), h("dd", {}, me.is_verified ? "Yes" : "Not yet"),
      h("dt", {}, "Two-factor sign-in"), h("dd", {}, me.is_mfa_enabled ? "On" : "Off")));
}

// A fresh token for the actions that need one: the password (and a code) again.
async function withFresh(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError && error.message.startsWith("A fresh token"))) throw error;
    const status = await api("/auth/mfa");
    await new Promise((resolve) => {
      const fields = [h("p", {}, "Confirm it is you to continue."),
        ...field("Password", "password", "password", { autocomplete: "current-password" })];
      if (status.totp) fields.push(...field("Code", "code", "text", { inputmode: "numeric" }));
      const confirmed = (data) => {
        useToken(data.access_token);
        resolve();
      };
      // A passkey verified on the device is both factors: nothing else is asked.
      const passkey = status.passkeys && supported() ? h("p", {}, button("Use a passkey", async () => {
        const options = await api("/auth/reauthenticate/passkey/options", { method: "POST" });
        const body = { passkey: await getPasskey(options) };
        confirmed(await api("/auth/reauthenticate", { method: "POST", body }));
      }, { id: "passkey-reauthenticate" })) : "";
      show(form("Confirm it is you", fields, "Confirm", async (values) => {
        confirmed(await api("/auth/reauthenticate", { method: "POST", body: values }));
      }), passkey);
    });
    return action();
  }
}

function passwordView() {
  show(form("Change your password", [
    ...field("Current password", "current_password", "password", { autocomplete: "current-password" }),
    ...field("New password", "new_password", "password", { autocomplete: "new-password", minlength: 12 })],
  "Change password", async (values) => {
    await withFresh(() => api("/users/me/password", { method: "PUT", body: values }));
    show(h("h1", {}, "Password changed"), h("p", {}, "Every other session was signed out."));
    say("Your password was changed.");
  }));
}

async function profileView() {
  const me = await api("/users/me");
  show(form("Profile", [...field("Username", "username", "text", { value: me.username }),
    ...field("Email", "email", "email", { value: me.email })], "Save", async (values) => {
    const changes = {};
    if (values.username !== me.username) changes.username = values.username;
    if (values.email !== me.email) changes.email = values.email;
    if (!Object.keys(changes).length) return say("Nothing to change.");
    const user = await withFresh(() => api("/users/me", { method: "PATCH", body: changes }));
    say(user.pending_email ? `We sent a link to ${user.pending_email}: open it to confirm.`
      : "Saved.");
  }));
}

async function sessionsView() {
  const sessions = await api("/auth/sessions");
  const current = currentSessionId();
  // This device's own session is marked, and left to "Sign out" (not revoked here).
  const rows = sessions.map((session) => h("tr", {},
    h("td", {}, session.user_agent || "Unknown device"),
    h("td", {}, new Date(session.last_used_at).toLocaleString()),
    h("td", {}, session.id === current ? h("strong", {}, "This device")
      : h("button", { type: "button", class: "secondary", onclick: async () => {
        await api(`/auth/sessions/${session.id}`, { method: "DELETE" }).catch(() => null);
        return sessionsView().catch(fail);
      } }, "Revoke"))));
  show(h("h1", {}, "Sessions"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Device"), h("th", {}, "Last used"),
      h("th", {}, h("span", { class: "visually-hidden" }, "Action")))), h("tbody", {}, rows)),
    h("button", { type: "button", onclick: async () => {
      await api("/auth/logout-all", { method: "POST" });
      forget();
      go("/account/signin");
    } }, "Sign out everywhere"));
}

function recoveryCodes(codes) {
  const text = codes.join("\n");
  const download = h("a", { href: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
    download: "recovery-codes.txt" }, "Download");
  return [h("h2", {}, "Recovery codes"),
    h("p", {}, "Each works once if you lose your phone. They are shown only now: keep them safe."),
    h("ul", { class: "codes", id: "recovery-codes" }, codes.map((code) => h("li", {}, code))),
    h("button", { type: "button", class: "secondary",
      onclick: () => navigator.clipboard.writeText(text).then(() => say("Copied.")) }, "Copy"),
    " ", download];
}

async function securityView() {
  const mfa = await api("/auth/mfa");
  const codes = mfa.methods.length ? [h("p", {}, `${mfa.recovery_codes_left} recovery codes left.`),
    button("Make new recovery codes", async () => {
      const data = await withFresh(() => api("/auth/mfa/recovery-codes", { method: "POST" }));
      show(h("h1", {}, "New recovery codes"), ...recoveryCodes(data.recovery_codes));
    }, { class: "secondary" })] : [];
  const passkeys = h("p", {}, mfa.passkeys ? `Passkeys: ${mfa.passkeys}. ` : "",
    h("a", { href: "/account/passkeys" }, "Manage passkeys"));
  if (!mfa.totp) {
    return show(h("h1", {}, "Two-factor sign-in"), h("p", {}, "Authenticator app: off."),
      button("Set up an authenticator app", setupView), passkeys, ...codes);
  }
  show(h("h1", {}, "Two-factor sign-in"), h("p", {}, "Authenticator app: on."), passkeys, ...codes,
    form("Turn it off", [...field("Code or recovery code", "code", "text")], "Turn off",
      async ({ code }) => {
        const digits = code.replace(/\s/g, "");
        const body = /^\d{6}$/.test(digits) ? { code: digits } : { recovery_code: code };
        await withFresh(() => api("/auth/mfa/totp", { method: "DELETE", body }));
        say("Two-factor sign-in is off.");
        return securityView();
      }));
}

async function setupView() {
  const setup = await withFresh(() => api("/auth/mfa/totp/setup", { method: "POST" }));
  const qr = `data:image/svg+xml;base64,${btoa(setup.qr_svg)}`;
  show(h("h1", {}, "Set up your authenticator app"),
    h("p", {}, "Scan this code with the app, or type the key."),
    h("img", { class: "qr", src: qr, alt: "QR code of your authenticator key" }),
    h("p", {}, "Key: ", h("code", { id: "totp-secret" }, setup.secret)),
    form("Confirm", [...field("Code from the app", "code", "text", { inputmode: "numeric" })], "Turn on",
      async ({ code }) => {
        const data = await api("/auth/mfa/totp/confirm", { method: "POST", body: { code } });
        show(h("h1", {}, "Two-factor sign-in is on"), ...recoveryCodes(data.recovery_codes));
      }));
}

async function passkeysView() {
  const passkeys = await api("/auth/passkeys");
  const when = (value) => (value ? new Date(value).toLocaleString() : "Never");
  const rows = passkeys.map((passkey) => h("tr", {},
    h("td", {}, passkey.name),
    h("td", {}, when(passkey.created_at)),
    h("td", {}, when(passkey.last_used_at)),
    h("td", {},
      button("Rename", () => renameView(passkey), { class: "secondary", "aria-label": `Rename ${passkey.name}` }),
      " ",
      button("Remove", async () => {
        await withFresh(() => api(`/auth/passkeys/${passkey.id}`, { method: "DELETE" }));
        await passkeysView();
        say(`Removed ${passkey.name}.`);
      }, { class: "secondary", "aria-label": `Remove ${passkey.name}` }))));
  show(h("h1", {}, "Passkeys"),
    h("p", {}, "A passkey signs you in without a password, and stands in for the code after one."),
    passkeys.length ? h("table", { id: "passkeys" }, h("thead", {}, h("tr", {}, h("th", {}, "Name"),
      h("th", {}, "Added"), h("th", {}, "Last used"),
      h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))), h("tbody", {}, rows))
      : h("p", {}, "No passkeys yet."),
    supported() ? form("Add a passkey", [...field("Name", "name", "text", { value: "Passkey", maxlength: 64 })],
      "Add passkey", async ({ name }) => {
        const options = await withFresh(() => api("/auth/passkeys/register/options",
          { method: "POST", body: { name } }));
        const credential = await createPasskey(options);
        await api("/auth/passkeys/register", { method: "POST", body: { name, credential } });
        await passkeysView();
        say(`Added ${name}.`);
      }) : h("p", {}, "This browser cannot use passkeys."));
}

function renameView(passkey) {
  show(form(`Rename ${passkey.name}`, [...field("Name", "name", "text", { value: passkey.name, maxlength: 64 })],
    "Save", async ({ name }) => {
      await api(`/auth/passkeys/${passkey.id}`, { method: "PATCH", body: { name } });
      await passkeysView();
      say("Saved.");
    }));
}

async function linkedView() {
  const [identities, providers] = await Promise.all([
    api("/users/me/identities"), api("/auth/oidc/providers", { auth: false })]);
  const rows = identities.map((identity) => h("tr", {},
    h("td", {}, identity.provider), h("td", {}, identity.email || ""),
    h("td", {}, new Date(identity.created_at).toLocaleString()),
    h("td", {}, button("Unlink", async () => {
      await withFresh(() => api(`/users/me/identities/${identity.id}`, { method: "DELETE" }));
      await linkedView();
      say(`Unlinked ${identity.provider}.`);
    }, { class: "secondary", "aria-label": `Unlink ${identity.provider}` }))));
  show(h("h1", {}, "Linked accounts"),
    h("p", {}, "Accounts at other providers that can sign in to this one."),
    identities.length ? h("table", { id: "identities" }, h("thead", {}, h("tr", {},
      h("th", {}, "Provider"), h("th", {}, "Email"), h("th", {}, "Linked"),
      h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))), h("tbody", {}, rows))
      : h("p", {}, "No linked accounts."),
    ...providers.map((provider) => h("p", {}, button(`Link ${provider.name}`, async () => {
      const data = await withFresh(() => api(`/auth/oidc/${encodeURIComponent(provider.name)}/link`,
        { method: "POST", body: {} }));
      location.assign(data.authorize_url);
    }))));
  problemFromUrl();
}

function deleteView() {
  show(form("Delete your account", [h("p", {}, "This cannot be undone."),
    ...field("Password", "password", "password", { autocomplete: "current-password" })],
  "Delete my account", async (values) => {
    await api("/users/me", { method: "DELETE", body: values });
    forget();
    show(h("h1", {}, "Account deleted"), h("p", {}, "Everything it held is gone."));
  }));
}

// -- routing --------------------------------------------------------------------

const PUBLIC = {
  "/account/signin": signInView,
  "/account/register": registerView,
  "/account/verify": () => tokenView("Confirm your email", "/auth/verify-email", "Your email address is confirmed."),
  "/account/forgot": forgotView,
  "/account/reset": resetView,
  "/account/confirm-email": () => tokenView("Confirm your new email", "/users/me/email/confirm",
    "Your new address is confirmed. Sign in again."),
};
const PRIVATE = {
  "/account": homeView,
  "/account/profile": profileView,
  "/account/password": passwordView,
  "/account/sessions": sessionsView,
  "/account/security": securityView,
  "/account/passkeys": passkeysView,
  "/account/linked": linkedView,
  "/account/delete": deleteView,
};

function fail(error) {
  const message = error instanceof ApiError ? error.message : passkeyProblem(error);
  say(message || "Something went wrong; please try again.", true);
}

async function route() {
  const path = location.pathname.replace(/\/$/, "");
  if (PUBLIC[path]) return Promise.resolve().then(PUBLIC[path]).then(problemFromUrl).catch(fail);
  if (!signedIn() && !(await refresh())) return go("/account/signin");
  // Views may be async or not; a failure of either is shown, never thrown.
  return Promise.resolve()
    .then(PRIVATE[path] || homeView)
    .catch(fail);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='/account']");
  if (!link || link.hasAttribute("download")) return;
  event.preventDefault();
  say("");
  go(link.getAttribute("href"));
});
document.getElementById("signout").addEventListener("click", async () => {
  await signOut();
  go("/account/signin");
});
window.addEventListener("popstate", route);
route().catch(fail);
