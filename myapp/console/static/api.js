// The console's one way to the API: cookie transport for the refresh token (an
// httpOnly cookie this script never sees), the access token in memory only, and
// one refresh through the cookie when a call answers 401.

const BASE = "/api/v1";
let accessToken = null;

export class ApiError extends Error {
  constructor(status, body) {
    // The problem+json detail is what the user reads, never a raw status.
    super((body && body.detail) || "Something went wrong; please try again.");
    this.status = status;
    this.body = body;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )myapp_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function send(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const request = { method, credentials: "same-origin", headers: { ...headers } };
  if (body !== undefined) {
    request.headers["Content-Type"] = "application/json";
    request.body = JSON.stringify(body);
  }
  if (auth && accessToken) request.headers.Authorization = `Bearer ${accessToken}`;
  const response = await fetch(BASE + path, request);
  const text = await response.text();
  return { response, data: text ? JSON.parse(text) : null };
}

export function signedIn() {
  return accessToken !== null;
}

// The session this page signed in (the access token's `sid` claim).
export function currentSessionId() {
  if (!accessToken) return null;
  const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload)).sid;
}

export function forget() {
  accessToken = null;
}

// A new access token through the refresh cookie; false when there is no session.
export async function refresh() {
  const { response, data } = await send("/auth/refresh", {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken(), "X-Token-Transport": "cookie" },
    auth: false,
  });
  accessToken = response.ok ? data.access_token : null;
  return response.ok;
}

// Call the API; on 401 (an expired access token) refresh once and retry. A 401
// that asks for a fresh token is passed on: only the user can give one.
export async function api(path, options = {}) {
  let { response, data } = await send(path, options);
  const stale = response.status === 401 && options.auth !== false;
  if (stale && !String(data && data.detail).startsWith("A fresh token") && (await refresh())) {
    ({ response, data } = await send(path, options));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Sign-in and its second step keep the refresh token in the cookie.
export async function signIn(path, body) {
  const data = await api(path, {
    method: "POST",
    body,
    auth: false,
    headers: { "X-Token-Transport": "cookie" },
  });
  if (data.access_token) accessToken = data.access_token;
  return data;
}

export function useToken(token) {
  accessToken = token;
}

export async function signOut() {
  const headers = { "X-CSRF-Token": csrfToken() };
  try {
    await send("/auth/logout", { method: "POST", headers, auth: false });
  } finally {
    accessToken = null;
  }
}
