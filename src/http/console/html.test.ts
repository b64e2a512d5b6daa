import assert from 'node:assert/strict';
import { test } from 'node:test';
import { html } from './html.js';

test('interpolated text is escaped; HTML made by html is not escaped twice', () => {
  const reason = `<script>alert("x")</script> & 'quotes'`;
  assert.equal(
    html`<p title="${reason}">${reason}</p>`.toString(),
    '<p title="&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quotes&#39;">&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quotes&#39;</p>',
  );
  const inner = html`<b>${'<i>'}</b>`;
  assert.equal(html`<p>${inner}</p>`.toString(), '<p><b>&#60;i&#62;</b></p>');
});

test('lists are joined, and null, undefined and false leave nothing', () => {
  const items = ['a<', 'b'].map((item) => html`<li>${item}</li>`);
  assert.equal(html`<ul>${items}</ul>`.toString(), '<ul><li>a&#60;</li><li>b</li></ul>');
  assert.equal(html`${null}${undefined}${false}${0}`.toString(), '0');
  assert.equal(html`${['<', ['>', html`<br>`]]}`.toString(), '&#60;&#62;<br>');
});

test('a string cannot pass itself off as HTML', () => {
  const forged = { toString: () => '<script>' };
  assert.equal(html`${String(forged)}`.toString(), '&#60;script&#62;');
});
