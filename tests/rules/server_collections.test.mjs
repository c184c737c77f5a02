// Server-only data: the functions write these with the Admin SDK and no client may read or write them,
// signed in or not, whatever custom claims the token carries. Collections that nobody has declared
// (and subcollections) fall under the same default deny.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertFails } from '@firebase/rules-unit-testing';
import {
  Timestamp,
  collection,
  collectionGroup,
  deleteDoc,
  doc,
  getDoc,
  getDocs,
  query,
  setDoc,
  updateDoc,
  where,
} from 'firebase/firestore';

import { readAsServer, seed, startRulesEnv } from './env.mjs';

const AT = Timestamp.fromDate(new Date('2025-03-04T05:06:07Z'));

// One realistic document per server-only location. Each carries uid 'alice' so that a rule keyed on
// ownership (the mistake these tests guard against) would let alice in.
const SERVER_DOCS = {
  'events/stripe:evt_1QfT7s2eZvKYlo2C0a1b2c3d': {
    uid: 'alice',
    source: 'stripe',
    type: 'customer.subscription.updated',
    status: 'published',
    steps: { billing: 'done', crm: 'pending' },
    correlation_id: 'c0ffee00-1111-2222-3333-444455556666',
    created_at: AT,
  },
  'stripe_customers/cus_QXk3Lr9aB2cD4e': { uid: 'alice', email: 'alice@example.com', updated_at: AT },
  'sync_failures/crm-alice-1': {
    uid: 'alice',
    provider: 'hubspot',
    status_code: 400,
    error: 'Property values were not valid',
    created_at: AT,
  },
  'notifications/payment_succeeded:in_1QfT7s': {
    uid: 'alice',
    to: 'alice@example.com',
    template: 'payment_succeeded',
    status: 'sent',
    resend_id: '4ef9a417-02e9-4d39-ad75-9611e0fcc33c',
    sent_at: AT,
  },
  'stripe_payments/pi_3QfT7s2eZvKYlo2C1x2y3z4w': { uid: 'alice', customer: 'cus_QXk3Lr9aB2cD4e', linked_at: AT },
  'unmatched_events/evt_1QfT7s2eZvKYlo2C9z8y7x6w': { uid: 'alice', customer: 'cus_unknown', recorded_at: AT },
  'dead_letters/support-dlq-1': { uid: 'alice', topic: 'support-dlq', delivery_attempts: 5, recorded_at: AT },
  // The tombstone of a deleted account: never for clients, not even the uid it names.
  'deleted_users/alice': { uid: 'alice', stripe_customers: ['cus_QXk3Lr9aB2cD4e'], deleted_at: AT },
  'ops_digests/2025-03-04': { uid: 'alice', sync_failures: 1, dead_letters: 1, sent_at: AT },
  'payment_sync/cus_QXk3Lr9aB2cD4e': { uid: 'alice', last_event_created: 1741064767, lag_seconds: 4 },
  // Written for the ops console: run statistics and the audit of replays. The console reads all of
  // this server-side; it adds no client access.
  'function_stats/crm_worker_2025030405_0': { uid: 'alice', function: 'crm_worker', ok: 3, hour: AT },
  'ops_audit/replay-1': { uid: 'alice', action: 'replay_dead_letter', actor_uid: 'alice', at: AT },
  'journeys/c0ffee00-1111-2222-3333-444455556666': { uid: 'alice', root_key: 'signup:alice', started_at: AT },
  'timeline/2025030405': { uid: 'alice', journeys: { 'c0ffee00-1111-2222-3333-444455556666': AT } },
  'customer_journeys/alice': { uid: 'alice', journeys: { 'c0ffee00-1111-2222-3333-444455556666': AT } },
  'payment_sync_stats/2025030405_0': { uid: 'alice', count: 1, hour: AT },
  'disputes/stripe:evt_1QfT7s2eZvKYlo2Cdp': { uid: 'alice', dispute: 'dp_1', recorded_at: AT },
  'ops_inbox/dead_letters_20250304': { uid: 'alice', items: { a1: { uid: 'alice', topic: 'support', status: 'open' } } },
  'customer_emails/2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90': { uid: 'alice' },
  // Not declared anywhere: new collections start closed.
  'feature_flags/global': { uid: 'alice', paywall_v2: true },
  // Subcollections are not covered by their parent's rules.
  'users/alice/private/push': { uid: 'alice', fcm_token: 'fcm-token' },
  'support_requests/SR-7F3K2Q/messages/m1': { uid: 'alice', body: 'agent reply' },
  'events/stripe:evt_1QfT7s2eZvKYlo2C0a1b2c3d/steps/publish': { uid: 'alice', state: 'done', result: {} },
};

let testEnv;

before(async () => {
  testEnv = await startRulesEnv('server');
  await seed(testEnv, {
    // The parents of the subcollections exist and are readable by alice where rules allow it, so a
    // denial below is about the subcollection, not a missing parent.
    'users/alice': { created_at: AT },
    'support_requests/SR-7F3K2Q': { uid: 'alice', reference: 'SR-7F3K2Q', status: 'received' },
    ...SERVER_DOCS,
  });
});

after(async () => {
  await testEnv?.cleanup();
});

// alice carries the claims the server itself grants (a paid plan) plus admin-looking claims: none of
// them may unlock server data.
const CALLERS = {
  'a signed-in user with custom claims': () =>
    testEnv
      .authenticatedContext('alice', { email: 'alice@example.com', pro: true, plan: 'pro', admin: true, role: 'ops' })
      .firestore(),
  // The ops console's role is a custom claim checked by the console function, never by the rules.
  'an operator with the ops role': () =>
    testEnv.authenticatedContext('alice', { email: 'alice@example.com', ops: true }).firestore(),
  'an unauthenticated client': () => testEnv.unauthenticatedContext().firestore(),
};

// Collection-group queries over the ledger's steps stay denied to every client.
describe('collection-group queries over ledger steps', { concurrency: true }, () => {
  for (const [caller, db] of Object.entries(CALLERS)) {
    test(`${caller}: denied`, async () => {
      await assertFails(getDocs(collectionGroup(db(), 'steps')));
      await assertFails(
        getDocs(query(collectionGroup(db(), 'steps'), where('correlation_id', '==', 'c0ffee00-1111-2222-3333-444455556666'))),
      );
    });
  }
});

function collectionPathOf(documentPath) {
  return documentPath.split('/').slice(0, -1).join('/');
}

for (const [path, data] of Object.entries(SERVER_DOCS)) {
  const collectionPath = collectionPathOf(path);

  // Every test here only reads or is denied, so they can run concurrently.
  describe(`${path} is server-only`, { concurrency: true }, () => {
    for (const [caller, db] of Object.entries(CALLERS)) {
      test(`${caller}: get denied`, async () => {
        await assertFails(getDoc(doc(db(), path)));
      });

      test(`${caller}: list denied, with or without a uid filter`, async () => {
        await assertFails(getDocs(collection(db(), collectionPath)));
        await assertFails(getDocs(query(collection(db(), collectionPath), where('uid', '==', 'alice'))));
      });

      test(`${caller}: create denied`, async () => {
        const newPath = `${collectionPath}/created-by-client`;
        await assertFails(setDoc(doc(db(), newPath), { ...data }));
        assert.equal((await readAsServer(testEnv, newPath)).exists(), false);
      });

      test(`${caller}: update denied`, async () => {
        await assertFails(updateDoc(doc(db(), path), { uid: 'mallory', tampered: true }));
        await assertFails(setDoc(doc(db(), path), { tampered: true }, { merge: true }));
        assert.equal((await readAsServer(testEnv, path)).get('uid'), 'alice');
      });

      test(`${caller}: delete denied`, async () => {
        await assertFails(deleteDoc(doc(db(), path)));
        assert.equal((await readAsServer(testEnv, path)).exists(), true);
      });
    }
  });
}
