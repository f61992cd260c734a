// The keys the player takes, and those it leaves to the page.
import { describe, expect, it } from 'vitest';
import { shortcutOf } from './keyboard';

const key = (key: string, over: Partial<Parameters<typeof shortcutOf>[0]> = {}) =>
  shortcutOf({ key, code: key === ' ' ? 'Space' : key, ctrlKey: false, metaKey: false, altKey: false, target: null, ...over });

describe('shortcutOf', () => {
  it('takes space and the arrows', () => {
    expect(key(' ')).toBe('toggle');
    expect(key('Spacebar', { code: 'Space' })).toBe('toggle');
    expect(key('ArrowRight')).toBe('forward');
    expect(key('ArrowLeft')).toBe('back');
    expect(key('ArrowUp')).toBeNull();
    expect(key('k')).toBeNull();
  });

  it("leaves the browser's shortcuts alone", () => {
    expect(key('ArrowLeft', { altKey: true })).toBeNull();
    expect(key(' ', { ctrlKey: true })).toBeNull();
    expect(key('ArrowRight', { metaKey: true })).toBeNull();
  });

  it('leaves typing alone', () => {
    for (const tagName of ['INPUT', 'TEXTAREA', 'SELECT'])
      expect(key(' ', { target: { tagName, isContentEditable: false } as unknown as EventTarget })).toBeNull();
    expect(key(' ', { target: { tagName: 'DIV', isContentEditable: true } as unknown as EventTarget })).toBeNull();
    expect(key(' ', { target: { tagName: 'BUTTON', isContentEditable: false } as unknown as EventTarget })).toBe('toggle');
  });
});
