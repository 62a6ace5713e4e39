// Passkeys in the browser: the API's WebAuthn options arrive as JSON with
// base64url strings for binary values; navigator.credentials wants bytes, and
// the answer goes back as JSON again (what PublicKeyCredential.toJSON() gives,
// built by hand for browsers that lack it).

export const supported = () => typeof window.PublicKeyCredential === "function";

function toBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toText(buffer) {
  if (!buffer) return null;
  const binary = String.fromCharCode(...new Uint8Array(buffer));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const descriptors = (list = []) => list.map((d) => ({ ...d, id: toBytes(d.id) }));

function common(credential) {
  return {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

// navigator.credentials.create with the options of /auth/passkeys/register/options.
export async function createPasskey(options) {
  const publicKey = {
    ...options,
    challenge: toBytes(options.challenge),
    user: { ...options.user, id: toBytes(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey });
  const { response } = credential;
  return {
    ...common(credential),
    response: {
      clientDataJSON: toText(response.clientDataJSON),
      attestationObject: toText(response.attestationObject),
      transports: response.getTransports ? response.getTransports() : [],
    },
  };
}

// navigator.credentials.get with sign-in, second-step or re-authentication options.
export async function getPasskey(options) {
  const publicKey = {
    ...options,
    challenge: toBytes(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  };
  const credential = await navigator.credentials.get({ publicKey });
  const { response } = credential;
  return {
    ...common(credential),
    response: {
      clientDataJSON: toText(response.clientDataJSON),
      authenticatorData: toText(response.authenticatorData),
      signature: toText(response.signature),
      userHandle: toText(response.userHandle),
    },
  };
}

// What a user reads when the browser's dialog fails: cancelled, or no passkey here.
export function passkeyProblem(error) {
  if (error && error.name === "NotAllowedError") return "No passkey was used (cancelled or timed out).";
  if (error && error.name === "InvalidStateError") return "This device already holds a passkey for your account.";
  return null;
}
