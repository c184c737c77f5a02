// Rules for support_requests/{reference}: written only by the support_request function (Admin SDK); a
// user may read, and query, only the requests whose uid is their own.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { assertFails, assertSucceeds } from '@firebase/rules-unit-testing';
import {
  Timestamp,
  collection,
  collectionGroup,
  deleteDoc,
  doc,
  getDoc,
  getDocs,
  limit,
  orderBy,
  query,
  setDoc,
  updateDoc,
  where,
} from 'firebase/firestore';

import { readAsServer, seed, startRulesEnv } from './env.mjs';

let testEnv;

function supportRequest(uid, reference, subject) {
  return {
    uid,
    reference,
    client_request_id: crypto.randomUUID(),
    email: `${uid}@example.com`,
    name: uid === 'alice' ? 'Alice Martin' : 'Bob Stone',
    subject,
    message: 'The receipt for my last payment never arrived.',
    status: 'received',
    created_at: Timestamp.fromDate(new Date('2025-03-04T05:06:07Z')),
  };
}

before(async () => {
  testEnv = await startRulesEnv('support');
  // Seeded once: every test here is a read or a denied write, so the data never changes.
  await seed(testEnv, {
    'support_requests/SR-7F3K2Q': supportRequest('alice', 'SR-7F3K2Q', 'Missing receipt'),
    'support_requests/SR-9HX2LM': supportRequest('alice', 'SR-9HX2LM', 'Change plan'),
    'support_requests/SR-4TQ8ZW': supportRequest('bob', 'SR-4TQ8ZW', 'Refund'),
  });
});

after(async () => {
  await testEnv?.cleanup();
});

function aliceDb() {
  return testEnv.authenticatedContext('alice', { email: 'alice@example.com' }).firestore();
}

function anonymousDb() {
  return testEnv.unauthenticatedContext().firestore();
}

describe('support_requests get', () => {
  test('the owner reads their own request', async () => {
    const snapshot = await assertSucceeds(getDoc(doc(aliceDb(), 'support_requests/SR-7F3K2Q')));
    assert.equal(snapshot.get('reference'), 'SR-7F3K2Q');
  });

  test('another user cannot read the request', async () => {
    await assertFails(getDoc(doc(aliceDb(), 'support_requests/SR-4TQ8ZW')));
  });

  test('an unauthenticated client cannot read the request', async () => {
    await assertFails(getDoc(doc(anonymousDb(), 'support_requests/SR-7F3K2Q')));
  });

  test('reading a request id that does not exist is denied (ids reveal nothing)', async () => {
    await assertFails(getDoc(doc(aliceDb(), 'support_requests/does-not-exist')));
  });
});

describe('support_requests list', () => {
  test("the owner lists their requests with where('uid', '==', uid)", async () => {
    const own = query(collection(aliceDb(), 'support_requests'), where('uid', '==', 'alice'));
    const snapshot = await assertSucceeds(getDocs(own));
    assert.deepEqual(snapshot.docs.map((d) => d.id).sort(), ['SR-7F3K2Q', 'SR-9HX2LM']);
  });

  test('the owner filter combines with ordering and limits', async () => {
    const recent = query(
      collection(aliceDb(), 'support_requests'),
      where('uid', '==', 'alice'),
      orderBy('created_at', 'desc'),
      limit(10),
    );
    await assertSucceeds(getDocs(recent));
  });

  test('listing without the uid filter is denied', async () => {
    await assertFails(getDocs(collection(aliceDb(), 'support_requests')));
  });

  test('listing with a filter on a field other than uid is denied', async () => {
    await assertFails(getDocs(query(collection(aliceDb(), 'support_requests'), where('status', '==', 'received'))));
  });

  test("listing another user's requests is denied", async () => {
    await assertFails(getDocs(query(collection(aliceDb(), 'support_requests'), where('uid', '==', 'bob'))));
  });

  test('a filter that could include other users (in [own, other]) is denied', async () => {
    await assertFails(
      getDocs(query(collection(aliceDb(), 'support_requests'), where('uid', 'in', ['alice', 'bob']))),
    );
  });

  test('an unauthenticated client cannot list, even with a uid filter', async () => {
    await assertFails(getDocs(query(collection(anonymousDb(), 'support_requests'), where('uid', '==', 'alice'))));
  });

  test('collection-group queries over support_requests are not granted', async () => {
    await assertFails(getDocs(query(collectionGroup(aliceDb(), 'support_requests'), where('uid', '==', 'alice'))));
  });
});

describe('support_requests writes are server-only', () => {
  test('the owner cannot create a request, even one carrying their own uid', async () => {
    await assertFails(setDoc(doc(aliceDb(), 'support_requests/SR-AAAAAA'), supportRequest('alice', 'SR-AAAAAA', 'Hi')));
    assert.equal((await readAsServer(testEnv, 'support_requests/SR-AAAAAA')).exists(), false);
  });

  test('an unauthenticated client cannot create a request', async () => {
    await assertFails(setDoc(doc(anonymousDb(), 'support_requests/SR-BBBBBB'), supportRequest('x', 'SR-BBBBBB', 'Hi')));
  });

  test('the owner cannot update their request', async () => {
    await assertFails(updateDoc(doc(aliceDb(), 'support_requests/SR-7F3K2Q'), { status: 'resolved' }));
    assert.equal((await readAsServer(testEnv, 'support_requests/SR-7F3K2Q')).get('status'), 'received');
  });

  test("another user cannot update someone else's request", async () => {
    await assertFails(updateDoc(doc(aliceDb(), 'support_requests/SR-4TQ8ZW'), { uid: 'alice' }));
    assert.equal((await readAsServer(testEnv, 'support_requests/SR-4TQ8ZW')).get('uid'), 'bob');
  });

  test('an unauthenticated client cannot update a request', async () => {
    await assertFails(updateDoc(doc(anonymousDb(), 'support_requests/SR-7F3K2Q'), { status: 'resolved' }));
  });

  for (const [who, db, id] of [
    ['the owner', () => aliceDb(), 'SR-7F3K2Q'],
    ['another user', () => aliceDb(), 'SR-4TQ8ZW'],
    ['an unauthenticated client', () => anonymousDb(), 'SR-9HX2LM'],
  ]) {
    test(`${who} cannot delete a request`, async () => {
      await assertFails(deleteDoc(doc(db(), `support_requests/${id}`)));
      assert.equal((await readAsServer(testEnv, `support_requests/${id}`)).exists(), true);
    });
  }
});
