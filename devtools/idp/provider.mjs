// A real OpenID provider (panva's certified oidc-provider) on 127.0.0.1, for the tests of the
// dashboard's company sign-in. devtools/idp/__init__.py starts it with one argument: a folder
// holding config.json (port, the one client, cookie keys). The provider keeps its state there:
// keys.json (its signing key, made when missing: removing it and starting again rotates the
// key) and store.json (users, sessions, grants, tokens), so a restart keeps all but the key.
//
// Besides the OpenID endpoints it serves its own sign-in page (/interaction/<uid>) and, for the
// tests, /__control__/users (create or replace a user) and /__control__/mutation (spoil the
// ID token of the next token response in a named way).

import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import * as jose from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';

const NAME = 'Test IdP';
const MAX_FORM_BYTES = 64 * 1024;
const SCOPES = ['openid', 'email', 'profile', 'offline_access'];
const MUTATIONS = new Set([
  'expired', 'wrong_audience', 'wrong_issuer', 'wrong_nonce', 'alg_none', 'tampered',
  'hs256_public_key', 'unknown_key',
]);

const folder = process.argv[2];
const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

function log(message) {
  process.stdout.write(`${new Date().toISOString()} idp: ${message}\n`);
}

// -- State that outlives a restart --------------------------------------------------------

const storePath = join(folder, 'store.json');
const store = existsSync(storePath)
  ? JSON.parse(readFileSync(storePath, 'utf8'))
  : { users: {}, records: {} };

function saveStore() {
  writeFileSync(`${storePath}.new`, JSON.stringify(store));
  renameSync(`${storePath}.new`, storePath);
}

// The oidc-provider adapter interface over `store.records`, written through to disk.
class FileAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  live(key) {
    const record = store.records[key];
    if (record && record.expiresAt !== null && record.expiresAt <= Date.now()) {
      delete store.records[key];
      return undefined;
    }
    return record;
  }

  findBy(field, value) {
    const prefix = `${this.model}:`;
    const key = Object.keys(store.records)
      .find((k) => k.startsWith(prefix) && store.records[k].payload[field] === value);
    const record = key && this.live(key);
    return record ? structuredClone(record.payload) : undefined;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : null;
    store.records[this.key(id)] = { payload: structuredClone(payload), expiresAt };
    saveStore();
  }

  async find(id) {
    const record = this.live(this.key(id));
    return record ? structuredClone(record.payload) : undefined;
  }

  async findByUid(uid) {
    return this.findBy('uid', uid);
  }

  async consume(id) {
    const record = this.live(this.key(id));
    if (record) {
      record.payload.consumed = Math.floor(Date.now() / 1000);
      saveStore();
    }
  }

  async destroy(id) {
    delete store.records[this.key(id)];
    saveStore();
  }

  async revokeByGrantId(grantId) {
    for (const [key, record] of Object.entries(store.records)) {
      if (record.payload.grantId === grantId) {
        delete store.records[key];
      }
    }
    saveStore();
  }
}

// -- Keys -----------------------------------------------------------------------------------

async function newRsaKey(kid) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: kid ?? await jose.calculateJwkThumbprint(jwk), alg: 'RS256', use: 'sig' };
}

const keysPath = join(folder, 'keys.json');
if (!existsSync(keysPath)) {
  writeFileSync(keysPath, JSON.stringify(await newRsaKey()));
}
const signingJwk = JSON.parse(readFileSync(keysPath, 'utf8'));
const signingKey = await jose.importJWK(signingJwk, 'RS256');
const publicJwk = { kty: signingJwk.kty, n: signingJwk.n, e: signingJwk.e };
// As openssl writes it, final newline included: the text an HS256 confusion attack keys with.
const publicPem = `${await jose.exportSPKI(await jose.importJWK(publicJwk, 'RS256', { extractable: true }))}\n`;
log(`signing key ${signingJwk.kid}`);

// -- Accounts -------------------------------------------------------------------------------

// Nothing for a disabled or unknown user: a refresh then answers invalid_grant.
async function findAccount(ctx, sub) {
  if (!store.users[sub]?.enabled) {
    return undefined;
  }
  return {
    accountId: sub,
    // Read at every token: a refresh shows the user's current name and groups.
    async claims() {
      const user = store.users[sub];
      return {
        sub,
        preferred_username: user.username,
        name: user.username,
        email: user.email ?? undefined,
        email_verified: user.email ? true : undefined,
        groups: user.groups,
      };
    },
  };
}

// Consent is implied for the one client: its grant covers every scope it may ask for.
async function loadExistingGrant(ctx) {
  const grantId = ctx.oidc.result?.consent?.grantId
    || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
  const grant = (grantId && await ctx.oidc.provider.Grant.find(grantId))
    || new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
  grant.addOIDCScope(SCOPES.join(' '));
  await grant.save();
  return grant;
}

// The library asks for a sign-in only when the session has no account: also ask when the
// session's account is disabled (findAccount found nothing), so prompt=none answers
// login_required.
const policy = interactionPolicy.base();
policy.get('login').checks.push(new interactionPolicy.Check(
  'account_unavailable',
  'the signed-in account is disabled',
  'login_required',
  (ctx) => Boolean(ctx.oidc.session.accountId && !ctx.oidc.account),
));

// -- Pages ----------------------------------------------------------------------------------

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

function loginPage(uid, { username = '', error } = {}) {
  const alert = error ? `<p role="alert">${escapeHtml(error)}</p>` : '';
  return page(NAME, `${alert}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input name="username" value="${escapeHtml(username)}" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
</form>`);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      throw new Error('form too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// -- The provider ---------------------------------------------------------------------------

const provider = new Provider(issuer, {
  adapter: FileAdapter,
  clients: [{
    client_id: config.clientId,
    client_secret: config.clientSecret,
    client_name: NAME,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: config.redirectUris,
    post_logout_redirect_uris: config.postLogoutRedirectUris,
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: config.cookieKeys },
  responseTypes: ['code'],
  scopes: SCOPES,
  claims: {
    openid: ['sub', 'groups'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  conformIdTokenClaims: false,
  ttl: {
    AccessToken: 60 * 60,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    RefreshToken: 14 * 24 * 60 * 60,
    Grant: 14 * 24 * 60 * 60,
    Session: 14 * 24 * 60 * 60,
  },
  findAccount,
  loadExistingGrant,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  interactions: { policy, url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page(`Sign out of ${NAME}`, form.replace(
          '</form>',
          '<button type="submit" name="logout" value="yes">Sign out</button></form>',
        ));
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page(`Signed out of ${NAME}`, '<p>You are signed out.</p>');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page(`${NAME}: error`, Object.entries(out)
      .map(([key, value]) => `<p>${escapeHtml(key)}: ${escapeHtml(value)}</p>`).join('\n'));
  },
});

provider.on('server_error', (ctx, error) => log(`server error: ${error.stack}`));
provider.on('grant.error', (ctx, error) => log(`grant error: ${error.message}`));
provider.on('authorization.error', (ctx, error) => log(`authorization error: ${error.message}`));

// Paths only: a query or a body may hold a code or a token.
provider.use(async (ctx, next) => {
  await next();
  log(`${ctx.method} ${ctx.path} ${ctx.respond === false ? ctx.res.statusCode : ctx.status}`);
});

// -- ID token mutations -----------------------------------------------------------------------

let nextMutation = null;

const b64 = (value) => jose.base64url.encode(JSON.stringify(value));

async function resign(payload, changes) {
  return new jose.SignJWT({ ...payload, ...changes })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: signingJwk.kid })
    .sign(signingKey);
}

async function mutate(kind, idToken) {
  const payload = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (kind) {
    case 'expired':
      return resign(payload, { iat: now - 7200, exp: now - 3600 });
    case 'wrong_audience':
      return resign(payload, { aud: 'another-client' });
    case 'wrong_issuer':
      return resign(payload, { iss: `${issuer}/another-issuer` });
    case 'wrong_nonce':
      return resign(payload, { nonce: randomUUID() });
    case 'alg_none':
      return `${b64({ alg: 'none' })}.${b64(payload)}.`;
    case 'tampered': {
      const [header, , signature] = idToken.split('.');
      const groups = [...(payload.groups ?? []), 'tms-admins'];
      return `${header}.${b64({ ...payload, groups })}.${signature}`;
    }
    case 'hs256_public_key':
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: signingJwk.kid })
        .sign(new TextEncoder().encode(publicPem));
    case 'unknown_key': {
      const stranger = await newRsaKey(`unknown-${randomUUID()}`);
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: stranger.kid })
        .sign(await jose.importJWK(stranger, 'RS256'));
    }
    default:
      throw new Error(`unknown mutation ${kind}`);
  }
}

provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.status === 200
      && ctx.body?.id_token && nextMutation) {
    const kind = nextMutation;
    nextMutation = null;
    ctx.body = { ...ctx.body, id_token: await mutate(kind, ctx.body.id_token) };
    log(`id_token mutated: ${kind}`);
  }
});

// -- Control endpoints (tests only; the provider listens on 127.0.0.1 alone) ---------------

function setUser(body) {
  const { sub, username, groups, email = null, password, enabled = true } = body;
  if (typeof sub !== 'string' || !sub || typeof username !== 'string' || !username
      || !Array.isArray(groups) || typeof password !== 'string') {
    throw new Error('a user needs sub, username, groups (a list) and password');
  }
  const holder = Object.entries(store.users)
    .find(([otherSub, user]) => otherSub !== sub && user.username === username);
  if (holder) {
    throw new Error(`username ${username} belongs to another sub`);
  }
  store.users[sub] = { username, groups, email, password, enabled: Boolean(enabled) };
  saveStore();
  log(`user ${sub} (${username}) set: groups ${groups.join(',') || '-'}, enabled ${Boolean(enabled)}`);
}

function setMutation(body) {
  if (!MUTATIONS.has(body.kind)) {
    throw new Error(`unknown mutation ${JSON.stringify(body.kind)}; known: ${[...MUTATIONS].join(', ')}`);
  }
  nextMutation = body.kind;
  log(`next id_token will be mutated: ${body.kind}`);
}

const CONTROLS = { '/__control__/users': setUser, '/__control__/mutation': setMutation };

provider.use(async (ctx, next) => {
  const control = CONTROLS[ctx.path];
  if (!control) {
    return next();
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return undefined;
  }
  try {
    control(JSON.parse(await readBody(ctx.req)));
    ctx.status = 204;
  } catch (error) {
    ctx.status = 400;
    ctx.body = { error: error.message };
  }
  return undefined;
});

// -- Sign-in interaction ----------------------------------------------------------------------

function checkPassword(username, password) {
  const found = Object.entries(store.users).find(([, user]) => user.username === username);
  if (!found || found[1].password !== password) {
    return { error: 'Wrong username or password.' };
  }
  if (!found[1].enabled) {
    return { error: 'This account is disabled.' };
  }
  return { sub: found[0] };
}

// Asked for (prompt=consent, which offline_access needs): granted without a page.
async function consent(ctx, details) {
  const grant = (details.grantId && await provider.Grant.find(details.grantId))
    || new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  grant.addOIDCScope(SCOPES.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } });
}

provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
  if (!match) {
    return next();
  }
  ctx.set('Cache-Control', 'no-store');
  const [, uid, login] = match;
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (error) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page(NAME, `<p role="alert">This sign-in has expired (${escapeHtml(error.message)}): start again.</p>`);
    return undefined;
  }
  if (!login && ctx.method === 'GET') {
    if (details.prompt.name === 'consent') {
      ctx.respond = false;
      return consent(ctx, details);
    }
    ctx.type = 'html';
    ctx.body = loginPage(uid);
    return undefined;
  }
  if (!login || ctx.method !== 'POST') {
    ctx.status = 405;
    return undefined;
  }
  const form = new URLSearchParams(await readBody(ctx.req));
  const username = form.get('username') ?? '';
  const result = checkPassword(username, form.get('password') ?? '');
  if (result.error) {
    log(`sign-in refused for ${username}: ${result.error}`);
    ctx.type = 'html';
    ctx.body = loginPage(uid, { username, error: result.error });
    return undefined;
  }
  log(`signed in: ${result.sub} (${username})`);
  ctx.respond = false;
  return provider.interactionFinished(
    ctx.req, ctx.res, { login: { accountId: result.sub } }, { mergeWithLastSubmission: false },
  );
});

const server = provider.listen(config.port, '127.0.0.1', () => log(`listening at ${issuer}`));
const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
