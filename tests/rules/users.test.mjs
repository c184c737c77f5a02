// Rules for users/{uid}: the signed-in user creates, reads and edits their own profile; server fields
// (billing, entitlements, crm, stripe_customer_id) and email/created_at are never client-writable.
//
// Every denial is paired with a control: the same request without the one offending change succeeds,
// so a denial cannot pass because of some unrelated reason.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertFails, assertSucceeds } from '@firebase/rules-unit-testing';
import {
  Timestamp,
  collection,
  deleteDoc,
  deleteField,
  doc,
  documentId,
  getDoc,
  getDocs,
  query,
  serverTimestamp,
  setDoc,
  updateDoc,
  where,
} from 'firebase/firestore';

import { readAsServer, seed, startRulesEnv } from './env.mjs';

const ALICE_EMAIL = 'alice@example.com';

let testEnv;

before(async () => {
  testEnv = await startRulesEnv('users');
});

after(async () => {
  await testEnv?.cleanup();
});

beforeEach(async () => {
  await testEnv.clearFirestore();
});

function aliceDb() {
  return testEnv.authenticatedContext('alice', { email: ALICE_EMAIL, email_verified: true }).firestore();
}

function bobDb() {
  return testEnv.authenticatedContext('bob', { email: 'bob@example.com' }).firestore();
}

function anonymousDb() {
  return testEnv.unauthenticatedContext().firestore();
}

/** What the Flutter app writes at sign-up. */
function newProfile() {
  return {
    email: ALICE_EMAIL,
    display_name: 'Alice Martin',
    photo_url: 'https://lh3.googleusercontent.com/a/alice',
    locale: 'en-GB',
    marketing_opt_in: false,
    created_at: serverTimestamp(),
  };
}

function without(data, field) {
  const copy = { ...data };
  delete copy[field];
  return copy;
}

/** A profile as it looks once the server has applied billing, entitlements and CRM sync. */
function storedProfile() {
  return {
    email: ALICE_EMAIL,
    display_name: 'Alice Martin',
    photo_url: 'https://lh3.googleusercontent.com/a/alice',
    locale: 'en-GB',
    marketing_opt_in: false,
    created_at: Timestamp.fromDate(new Date('2025-01-02T03:04:05Z')),
    stripe_customer_id: 'cus_QXk3Lr9aB2cD4e',
    billing: {
      status: 'active',
      plan: 'pro_monthly',
      customer_id: 'cus_QXk3Lr9aB2cD4e',
      subscription_id: 'sub_1QfT7s2eZvKYlo2C5d6e7f8g',
      current_period_end: Timestamp.fromDate(new Date('2025-02-02T03:04:05Z')),
      updated_at: Timestamp.fromDate(new Date('2025-01-02T03:05:00Z')),
      last_event_created: 1735787045,
    },
    entitlements: { pro: true },
    crm: { hubspot_contact_id: '51', synced_at: Timestamp.fromDate(new Date('2025-01-02T03:06:00Z')) },
  };
}

describe('users/{uid} create', () => {
  test('the owner creates their profile with every client field', async () => {
    await assertSucceeds(setDoc(doc(aliceDb(), 'users/alice'), newProfile()));
    const stored = await readAsServer(testEnv, 'users/alice');
    assert.equal(stored.get('display_name'), 'Alice Martin');
  });

  test('the owner creates a minimal profile (created_at only)', async () => {
    await assertSucceeds(setDoc(doc(aliceDb(), 'users/alice'), { created_at: serverTimestamp() }));
  });

  test('a user whose token has no email (phone sign-in) creates a profile without email', async () => {
    const phoneUser = testEnv.authenticatedContext('carol', { phone_number: '+447700900123' }).firestore();
    await assertSucceeds(setDoc(doc(phoneUser, 'users/carol'), without(newProfile(), 'email')));
  });

  test('the limits are inclusive: 100/2048/20 characters are accepted', async () => {
    await assertSucceeds(
      setDoc(doc(aliceDb(), 'users/alice'), {
        ...newProfile(),
        display_name: 'd'.repeat(100),
        photo_url: `https://cdn.example.com/${'p'.repeat(2048 - 24)}`,
        locale: 'l'.repeat(20),
      }),
    );
  });

  test("another user cannot create someone else's profile, even with a payload valid for them", async () => {
    const bobsProfile = { ...newProfile(), email: 'bob@example.com', display_name: 'Bob' };
    await assertFails(setDoc(doc(bobDb(), 'users/alice'), bobsProfile));
    assert.equal((await readAsServer(testEnv, 'users/alice')).exists(), false);
    await assertSucceeds(setDoc(doc(bobDb(), 'users/bob'), bobsProfile));
  });

  test('an unauthenticated client cannot create a profile', async () => {
    await assertFails(setDoc(doc(anonymousDb(), 'users/alice'), newProfile()));
    await assertSucceeds(setDoc(doc(aliceDb(), 'users/alice'), newProfile()));
  });

  // Each case changes exactly one thing in an otherwise valid sign-up payload.
  const forbiddenCreates = {
    'billing (server-only)': { ...newProfile(), billing: { status: 'active', plan: 'pro_monthly' } },
    'entitlements (server-only)': { ...newProfile(), entitlements: { pro: true } },
    'crm (server-only)': { ...newProfile(), crm: { hubspot_contact_id: '1' } },
    'stripe_customer_id (server-only)': { ...newProfile(), stripe_customer_id: 'cus_fake' },
    'an unknown field': { ...newProfile(), role: 'admin' },
    'an email other than the token email': { ...newProfile(), email: 'someone.else@example.com' },
    'a non-string email': { ...newProfile(), email: 42 },
    'no created_at': without(newProfile(), 'created_at'),
    'a device clock created_at': { ...newProfile(), created_at: Timestamp.fromDate(new Date()) },
    'a string created_at': { ...newProfile(), created_at: '2025-01-02T03:04:05Z' },
    'display_name over 100 characters': { ...newProfile(), display_name: 'd'.repeat(101) },
    'a non-string display_name': { ...newProfile(), display_name: ['Alice'] },
    'photo_url over 2048 characters': { ...newProfile(), photo_url: `https://x.example/${'p'.repeat(2031)}` },
    'a non-string photo_url': { ...newProfile(), photo_url: { url: 'https://x.example/a.png' } },
    'locale over 20 characters': { ...newProfile(), locale: 'l'.repeat(21) },
    'a non-string locale': { ...newProfile(), locale: 7 },
    'a non-bool marketing_opt_in': { ...newProfile(), marketing_opt_in: 'yes' },
  };

  for (const [name, payload] of Object.entries(forbiddenCreates)) {
    test(`create with ${name} is denied`, async () => {
      await assertFails(setDoc(doc(aliceDb(), 'users/alice'), payload));
      assert.equal((await readAsServer(testEnv, 'users/alice')).exists(), false);
      await assertSucceeds(setDoc(doc(aliceDb(), 'users/alice'), newProfile()));
    });
  }

  test('the oversized photo_url case really is one character over the limit', () => {
    assert.equal(forbiddenCreates['photo_url over 2048 characters'].photo_url.length, 2049);
  });

  test('a token without an email cannot claim one', async () => {
    const phoneUser = testEnv.authenticatedContext('carol', { phone_number: '+447700900123' }).firestore();
    await assertFails(setDoc(doc(phoneUser, 'users/carol'), { ...newProfile(), email: 'carol@example.com' }));
    await assertSucceeds(setDoc(doc(phoneUser, 'users/carol'), without(newProfile(), 'email')));
  });
});

describe('users/{uid} read', () => {
  beforeEach(async () => {
    await seed(testEnv, { 'users/alice': storedProfile(), 'users/bob': { created_at: Timestamp.now() } });
  });

  test('the owner reads their profile, including the server-written fields', async () => {
    const snapshot = await assertSucceeds(getDoc(doc(aliceDb(), 'users/alice')));
    assert.equal(snapshot.get('billing.status'), 'active');
    assert.deepEqual(snapshot.get('entitlements'), { pro: true });
    assert.equal(snapshot.get('crm.hubspot_contact_id'), '51');
  });

  test('the owner may check whether their profile exists yet (first launch)', async () => {
    const carol = testEnv.authenticatedContext('carol', { email: 'carol@example.com' }).firestore();
    const snapshot = await assertSucceeds(getDoc(doc(carol, 'users/carol')));
    assert.equal(snapshot.exists(), false);
  });

  test('another user cannot read the profile', async () => {
    await assertFails(getDoc(doc(bobDb(), 'users/alice')));
  });

  test('an unauthenticated client cannot read the profile', async () => {
    await assertFails(getDoc(doc(anonymousDb(), 'users/alice')));
  });

  test('listing the users collection is denied', async () => {
    await assertFails(getDocs(collection(aliceDb(), 'users')));
  });

  test('even a list query that matches only the caller is denied (get is the only read)', async () => {
    await assertFails(getDocs(query(collection(aliceDb(), 'users'), where(documentId(), '==', 'alice'))));
    await assertFails(getDocs(query(collection(aliceDb(), 'users'), where('email', '==', ALICE_EMAIL))));
  });

  test('subcollections under the own profile are not client-readable', async () => {
    await seed(testEnv, { 'users/alice/private/tokens': { uid: 'alice', fcm: 'token' } });
    await assertFails(getDoc(doc(aliceDb(), 'users/alice/private/tokens')));
    await assertFails(setDoc(doc(aliceDb(), 'users/alice/private/notes'), { text: 'hi' }));
  });
});

describe('users/{uid} update', () => {
  beforeEach(async () => {
    await seed(testEnv, { 'users/alice': storedProfile() });
  });

  test('the owner updates every editable field', async () => {
    await assertSucceeds(
      updateDoc(doc(aliceDb(), 'users/alice'), {
        display_name: 'Alice M.',
        photo_url: 'https://cdn.example.com/alice.png',
        locale: 'fr-FR',
        marketing_opt_in: true,
      }),
    );
    const stored = await readAsServer(testEnv, 'users/alice');
    assert.equal(stored.get('locale'), 'fr-FR');
    assert.equal(stored.get('billing.status'), 'active');
  });

  test('the owner clears an editable field', async () => {
    await assertSucceeds(updateDoc(doc(aliceDb(), 'users/alice'), { photo_url: deleteField() }));
  });

  test('the owner writes editable fields with set(..., {merge: true})', async () => {
    await assertSucceeds(setDoc(doc(aliceDb(), 'users/alice'), { display_name: 'Al' }, { merge: true }));
  });

  const allowedUpdate = { display_name: 'Alice M.' };

  // Each case adds one forbidden change to an otherwise allowed update.
  const forbiddenUpdates = {
    billing: { billing: { status: 'active', plan: 'enterprise' } },
    'a billing subfield': { 'billing.status': 'active', 'billing.plan': 'enterprise' },
    entitlements: { entitlements: { pro: true, enterprise: true } },
    'an entitlement subfield': { 'entitlements.enterprise': true },
    crm: { crm: { hubspot_contact_id: '999' } },
    email: { email: 'new.address@example.com' },
    'email set to the token email': { email: ALICE_EMAIL.toUpperCase() },
    created_at: { created_at: Timestamp.fromDate(new Date('2020-01-01T00:00:00Z')) },
    'created_at removed': { created_at: deleteField() },
    stripe_customer_id: { stripe_customer_id: 'cus_someone_else' },
    'billing removed': { billing: deleteField() },
    'an unknown field': { is_admin: true },
    'display_name over 100 characters': { display_name: 'd'.repeat(101) },
    'a non-string display_name': { display_name: 12345 },
    'photo_url over 2048 characters': { photo_url: 'p'.repeat(2049) },
    'a non-string photo_url': { photo_url: true },
    'locale over 20 characters': { locale: 'l'.repeat(21) },
    'a non-string locale': { locale: null },
    'a non-bool marketing_opt_in': { marketing_opt_in: 1 },
  };

  for (const [name, change] of Object.entries(forbiddenUpdates)) {
    test(`update of ${name} is denied`, async () => {
      await assertFails(updateDoc(doc(aliceDb(), 'users/alice'), { ...allowedUpdate, ...change }));
      await assertSucceeds(updateDoc(doc(aliceDb(), 'users/alice'), allowedUpdate));
    });
  }

  test('a denied update leaves the server fields untouched', async () => {
    await assertFails(updateDoc(doc(aliceDb(), 'users/alice'), { 'billing.plan': 'enterprise' }));
    const stored = await readAsServer(testEnv, 'users/alice');
    assert.equal(stored.get('billing.plan'), 'pro_monthly');
  });

  test('a full set() that would drop the server fields is denied', async () => {
    const { email, display_name, photo_url, locale, marketing_opt_in, created_at } = storedProfile();
    const clientFieldsOnly = { email, display_name, photo_url, locale, marketing_opt_in, created_at };
    await assertFails(setDoc(doc(aliceDb(), 'users/alice'), clientFieldsOnly));
    await assertSucceeds(setDoc(doc(aliceDb(), 'users/alice'), clientFieldsOnly, { merge: true }));
  });

  test('another user cannot update the profile', async () => {
    await assertFails(updateDoc(doc(bobDb(), 'users/alice'), allowedUpdate));
  });

  test('an unauthenticated client cannot update the profile', async () => {
    await assertFails(updateDoc(doc(anonymousDb(), 'users/alice'), allowedUpdate));
  });
});

describe('users/{uid} delete', () => {
  beforeEach(async () => {
    await seed(testEnv, { 'users/alice': storedProfile() });
  });

  for (const [who, db] of [
    ['the owner', () => aliceDb()],
    ['another user', () => bobDb()],
    ['an unauthenticated client', () => anonymousDb()],
  ]) {
    test(`${who} cannot delete the profile`, async () => {
      await assertFails(deleteDoc(doc(db(), 'users/alice')));
      assert.equal((await readAsServer(testEnv, 'users/alice')).exists(), true);
    });
  }
});
