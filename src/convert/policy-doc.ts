// Renders the per-key policy table as Markdown for docs/conversion.md (a test
// checks that the document carries exactly this table).
import { SERVICE_KEY_POLICY } from './policy.js';

export const POLICY_TABLE_START = '<!-- policy-table:start (generated from src/convert/policy.ts; UPDATE_GOLDEN=1 rewrites it) -->';
export const POLICY_TABLE_END = '<!-- policy-table:end -->';

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function renderPolicyTable(): string {
  const rows = Object.keys(SERVICE_KEY_POLICY)
    .sort()
    .map((k) => {
      const p = SERVICE_KEY_POLICY[k]!;
      const text = p.hint ? `${p.note}${/[.!?]$/.test(p.note) ? '' : '.'} ${p.hint}` : p.note;
      return `| \`${k}\` | ${p.action} | ${cell(text)} |`;
    });
  return ['| key | policy | what happens |', '|---|---|---|', ...rows].join('\n');
}
