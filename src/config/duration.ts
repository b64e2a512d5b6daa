/** Parses `90s`, `45m`, `2h`, `1d` (or a bare number of seconds) into seconds. */
export function parseDurationSeconds(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null;
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(value.trim());
  if (!match) return null;
  const amount = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = { s: 1, m: 60, h: 3600, d: 86400 }[unit] ?? 1;
  const seconds = amount * factor;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
