// SPDX-License-Identifier: MIT
// node:test's TAP reporter without whitespace-only lines. Failure details are YAML blocks in
// which multi-line messages contain blank lines; meson's TAP parser strips trailing white
// space and then reads such a line as the end of the block ("Unknown TAP output lines").
// Dropping them changes nothing else in the output. Used by meson.build.
import { tap } from 'node:test/reporters';

export default async function* tapWithoutBlankLines(source) {
  for await (const chunk of tap(source)) {
    yield String(chunk).replace(/^[ \t]*\n/gm, '');
  }
}
