/**
 * The records `contrib/ssh/portcullis-ssh-login` writes when sshd opens the PAM session of a login
 * with a certificate (pam_exec, right after pam_loginuid): the connection's process, its listener,
 * the account, the certificates that logged in (sshd's SSH_AUTH_INFO_0: more than one when
 * `AuthenticationMethods` asks for several public keys) and the login's audit session. One line, in
 * a directory only root can write, so unlike a session record it is sshd's own word:
 *
 *   portcullis-ssh-login/3 <pid> <start> <audit session> <listener pid> <listener start> <boot id> <account> <certificate>[,<certificate>…]
 *
 * (version 2, written by the hook before, has exactly one certificate).
 *
 * With it, the guard ends what a login left running after its connection closed (`nohup` then
 * logout, `setsid`, `tmux`): those processes keep the audit session, which they cannot leave.
 */
import { unsetLoginSession } from './host-processes.js';
import { RecordDirectory } from './session-records.js';

const recordPattern =
  /^portcullis-ssh-login\/(2|3) ([1-9]\d{0,9}) (\d{1,20}) (\d{1,10}) ([1-9]\d{0,9}) (\d{1,20}) ([0-9a-f-]{36}) ([A-Za-z0-9._-]{1,64}) ([A-Za-z0-9+/]+={0,2}(?:,[A-Za-z0-9+/]+={0,2}){0,3})\n?$/;
const fileNamePattern = /^\d+\.\d+$/;

export interface LoginRecord {
  readonly file: string;
  /** The connection's privileged process, as in its session records. */
  readonly pid: number;
  readonly startTime: string;
  /** The audit session (`/proc/PID/sessionid`) of the login. */
  readonly loginSession: number;
  /** The sshd listener the connection came from: never signalled. */
  readonly listener: { readonly pid: number; readonly startTime: string };
  /** The boot it was written in (`/proc/sys/kernel/random/boot_id`): pids and audit sessions are a boot's. */
  readonly bootId: string;
  readonly account: string;
  /** The certificates the login authenticated with, in sshd's order (one to four). */
  readonly certificates: readonly Buffer[];
  /** When the record was written (its modification time), milliseconds since the epoch. */
  readonly recordedAt: number;
}

export function parseLoginRecord(file: string, text: string, recordedAt: number): LoginRecord | undefined {
  const match = recordPattern.exec(text);
  if (!match) return undefined;
  const [, version, pid, startTime, session, listenerPid, listenerStart, bootId, account, certificates] =
    match as unknown as string[];
  const blobs = (certificates as string).split(',');
  if (version === '2' && blobs.length > 1) return undefined;
  const loginSession = Number(session);
  // The writer refuses "unset": it would name no login.
  if (loginSession >= unsetLoginSession) return undefined;
  return {
    file,
    pid: Number(pid),
    startTime: startTime as string,
    loginSession,
    listener: { pid: Number(listenerPid), startTime: listenerStart as string },
    bootId: bootId as string,
    account: account as string,
    certificates: blobs.map((blob) => Buffer.from(blob, 'base64')),
    recordedAt,
  };
}

export class LoginRecords extends RecordDirectory<LoginRecord> {
  constructor(directory: string) {
    super(directory, fileNamePattern, parseLoginRecord);
  }
}
