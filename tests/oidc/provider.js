// A certified OpenID Provider (panva's oidc-provider) for the test suite, on
// 127.0.0.1. Configured from the environment by tests/support/oidc.py:
//   PORT           the port to listen on (the issuer is http://127.0.0.1:PORT)
//   CLIENTS        JSON list of client metadata (client_id, client_secret, redirect_uris)
//   JWKS           optional JSON key set to sign ID tokens with (key rotation tests)
// Accounts: whoever signs in at the dev login form exists. The login typed is the
// subject and the email address, verified unless it starts with "unverified", so
// tests pick identities by name.
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

const configuration = {
  clients: JSON.parse(process.env.CLIENTS),
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  cookies: { keys: ["test-only-cookie-key"] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const email = id;
        return {
          sub: id,
          email,
          email_verified: !email.startsWith("unverified"),
          name: email.split("@")[0],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    // Consent is implied for these test clients: one interaction (the login) only.
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid email profile");
    await grant.save();
    return grant;
  },
};
if (process.env.JWKS) configuration.jwks = JSON.parse(process.env.JWKS);

const provider = new Provider(issuer, configuration);
provider.listen(port, "127.0.0.1", () => console.log(`listening on ${issuer}`));
