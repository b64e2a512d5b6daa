import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeStartupMessage } from './encode.js';
import { FrameReader } from './frame-reader.js';
import { BackendMessage } from './message-types.js';
import { decodeNegotiateProtocolVersion, decodeStartupPacket, type StartupMessage } from './messages.js';
import { isProtocolOption, protocolNegotiation } from './negotiation.js';

function startup(protocolVersion: number, parameters: Record<string, string>): StartupMessage {
  const bytes = encodeStartupMessage({ user: 'u', parameters, protocolVersion });
  const packet = decodeStartupPacket(bytes.subarray(4));
  assert.equal(packet.kind, 'startup');
  return packet as StartupMessage;
}

describe('protocolNegotiation', () => {
  it('is not due for a 3.0 client without protocol options', () => {
    assert.equal(protocolNegotiation(startup(0x30000, { application_name: 'psql' })), undefined);
  });

  it('answers 3.2 with 3.0 and lists every _pq_ option as unrecognised', () => {
    const answer = protocolNegotiation(startup(0x30002, { '_pq_.x': '1', DateStyle: 'ISO', '_pq_.y': '2' }));
    assert.ok(answer);
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(answer);
    assert.equal(reader.next(), true);
    assert.equal(reader.type, BackendMessage.NegotiateProtocolVersion);
    assert.deepEqual(decodeNegotiateProtocolVersion(reader.body()), {
      newestMinorVersion: 0,
      unrecognizedOptions: ['_pq_.x', '_pq_.y'],
    });
  });

  it('tells protocol options from settings', () => {
    assert.equal(isProtocolOption('_pq_.compression'), true);
    assert.equal(isProtocolOption('options'), false);
  });
});
