// Colours chosen for WCAG AA contrast (4.5:1 or better) on their backgrounds; the e2e axe check
// fails on anything below that.
export const colors = {
  background: '#f6f7f9',
  surface: '#ffffff',
  text: '#1a1d23',
  muted: '#4a5160',
  border: '#c9ced8',
  primary: '#1d4ed8',
  primaryText: '#ffffff',
  danger: '#b42318',
  dangerSurface: '#fdecea',
  success: '#146c2e',
  warning: '#8a4b00',
  pinned: '#7a3e00',
  pinnedSurface: '#fff4e0',
  focus: '#0b3aa8',
};

export const statusColor: Record<string, string> = {
  queued: colors.muted,
  processing: colors.warning,
  running: colors.warning,
  indexed: colors.success,
  succeeded: colors.success,
  completed: colors.success,
  done: colors.success,
  failed: colors.danger,
};
