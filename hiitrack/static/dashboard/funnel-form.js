// Create or replace a saved funnel: steps (each one event, or any of
// several), order, window, exclusions, property.  The server checks
// everything; its error is shown next to the field it is about.
import { ApiError, bucket, funnel, request, segment } from './api.js';
import { errorBox, h } from './dom.js';

const WINDOW_UNITS = [
  [86400, 'days'],
  [3600, 'hours'],
  [60, 'minutes'],
];
const DEFAULT_WINDOW = 14 * 86400;

export async function load(name) {
  const overview = await bucket();
  if (name === null) {
    return { overview, name: null, initial: { description: '', steps: [[''], ['']], order: 'sequential', window: DEFAULT_WINDOW, exclude: [], property: '' } };
  }
  const saved = await funnel(name);
  const names = (ids) => ids.map((id) => overview.eventNames.get(id) ?? '');
  return {
    overview,
    name,
    initial: {
      description: saved.report.description || '',
      steps: saved.stepIds.map(names),
      order: saved.exact ? saved.exact.order : 'sequential',
      window: saved.exact ? saved.exact.window : DEFAULT_WINDOW,
      exclude: saved.exact ? names(saved.exact.exclude) : [],
      property: saved.report.property ? saved.report.property.name : '',
    },
  };
}

export function title(data) {
  return data.name === null ? 'New funnel' : `Edit ${data.name}`;
}

// Which field a server error is about, from the words it uses.
export function fieldOf(message) {
  const text = message.toLowerCase();
  const fields = [
    ['funnel name', 'name'],
    ['exclu', 'exclude'],
    ['window', 'window'],
    ['order', 'order'],
    ['property', 'property'],
    ['description', 'description'],
    ['funnels', 'form'],
    ['step', 'steps'],
    ['event', 'steps'],
  ];
  const found = fields.find(([word]) => text.includes(word));
  return found ? found[1] : 'form';
}

const eventInput = (value, label) => h('input', { type: 'text', class: 'event-name', list: 'known-events', value, 'aria-label': label, autocomplete: 'off' });

function stepRow(names, number) {
  const row = h('li', { class: 'step' });
  const alternatives = h('span', { class: 'alternatives' }, names.map((name, i) => eventInput(name, i ? `Step ${number}, or` : `Step ${number}`)));
  row.append(
    alternatives,
    h('button', { type: 'button', class: 'small', onclick: () => alternatives.append(eventInput('', `Step ${number}, or`)), title: 'Any of several events completes this step' }, '+ or'),
    h('button', { type: 'button', class: 'small', onclick: () => row.previousElementSibling && row.previousElementSibling.before(row), 'aria-label': `Move step ${number} up` }, '↑'),
    h('button', { type: 'button', class: 'small', onclick: () => row.remove(), 'aria-label': `Remove step ${number}` }, '×'),
  );
  return row;
}

function field(name, label, control, hint) {
  return h(
    'div',
    { class: 'field', data: { field: name } },
    h('label', { for: `field-${name}` }, label),
    control,
    hint ? h('p', { class: 'hint' }, hint) : null,
    h('p', { class: 'field-error', id: `error-${name}`, role: 'alert', hidden: true }),
  );
}

// The window in the largest unit that holds it whole (else rounded to minutes).
function windowParts(seconds) {
  const [unit] = WINDOW_UNITS.find(([size]) => seconds % size === 0) || [60];
  return { amount: Math.max(1, Math.round(seconds / unit)), unit };
}

// The request body the API contract defines, from the form.
export function definitionOf(form) {
  const steps = [...form.querySelectorAll('#field-steps li.step')]
    .map((row) => [...row.querySelectorAll('input.event-name')].map((input) => input.value.trim()).filter(Boolean))
    .filter((names) => names.length)
    .map((names) => (names.length === 1 ? names[0] : names));
  const body = {
    description: form.elements.description.value,
    event: steps,
    order: form.elements.order.value,
    window: Number(form.elements.window_amount.value) * Number(form.elements.window_unit.value),
    exclude: [...form.querySelectorAll('#field-exclude input')].map((input) => input.value.trim()).filter(Boolean),
  };
  const property = form.elements.property.value.trim();
  if (property) {
    body.property = property;
  }
  return body;
}

export function render({ overview, name, initial }) {
  const window = windowParts(initial.window);
  const stepList = h('ol', { id: 'field-steps', class: 'steps' }, initial.steps.map((names, i) => stepRow(names, i + 1)));
  const excludeList = h('div', { id: 'field-exclude', class: 'excludes' }, initial.exclude.map((value) => eventInput(value, 'Excluded event')));
  const formError = h('div', { class: 'form-error', role: 'alert' });

  const showError = (message) => {
    const target = fieldOf(message);
    const box = document.getElementById(`error-${target}`);
    if (box) {
      box.textContent = message;
      box.hidden = false;
      box.closest('.field').querySelector('input, select, textarea')?.focus();
    } else {
      formError.replaceChildren(errorBox(message));
    }
  };

  const submit = async (event) => {
    event.preventDefault();
    const form = event.target;
    form.querySelectorAll('.field-error').forEach((box) => {
      box.hidden = true;
      box.textContent = '';
    });
    formError.replaceChildren();
    const funnelName = form.elements.name.value.trim();
    if (!funnelName) {
      showError('funnel name: give the funnel a name');
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await request('POST', `/funnel/${segment(funnelName)}`, { body: definitionOf(form) });
      location.hash = `#/funnel/${segment(funnelName)}`;
    } catch (error) {
      showError(error instanceof ApiError ? error.message : String(error));
    } finally {
      button.disabled = false;
    }
  };

  return h(
    'div',
    { class: 'view funnel-form' },
    h('h1', { tabindex: '-1' }, name === null ? 'New funnel' : `Edit ${name}`),
    name === null ? null : h('p', { class: 'note' }, 'Saving replaces the funnel: its report starts afresh.'),
    h('datalist', { id: 'known-events' }, [...overview.eventIds.keys()].sort().map((value) => h('option', { value }))),
    h('datalist', { id: 'known-properties' }, [...overview.properties.values()].sort().map((value) => h('option', { value }))),
    h(
      'form',
      { class: 'write', novalidate: true, onsubmit: submit },
      formError,
      field('name', 'Name', h('input', { id: 'field-name', name: 'name', type: 'text', value: name ?? '', readonly: name !== null, required: true, autocomplete: 'off' })),
      field('description', 'Description', h('input', { id: 'field-description', name: 'description', type: 'text', value: initial.description })),
      h(
        'div',
        { class: 'field', data: { field: 'steps' } },
        h('span', { class: 'label', id: 'steps-label' }, 'Steps'),
        stepList,
        h('button', { type: 'button', onclick: () => stepList.append(stepRow([''], stepList.children.length + 1)) }, '+ Step'),
        h('p', { class: 'hint' }, '2–20 steps in order; “+ or” lets any of several events complete a step.'),
        h('p', { class: 'field-error', id: 'error-steps', role: 'alert', hidden: true }),
      ),
      field(
        'order',
        'Order',
        h(
          'select',
          { id: 'field-order', name: 'order' },
          [
            ['sequential', 'Sequential: in this order, other events may come between'],
            ['strict', 'Strict: in this order, nothing between'],
            ['any', 'Any order'],
          ].map(([value, label]) => h('option', { value, selected: value === initial.order }, label)),
        ),
      ),
      field(
        'window',
        'Window',
        h(
          'span',
          { class: 'inline' },
          h('input', { id: 'field-window', name: 'window_amount', type: 'number', min: '1', step: '1', value: String(window.amount) }),
          h('select', { name: 'window_unit', 'aria-label': 'Window unit' }, WINDOW_UNITS.map(([size, label]) => h('option', { value: String(size), selected: size === window.unit }, label))),
        ),
        'How long a visitor has from the first step to the last.',
      ),
      h(
        'div',
        { class: 'field', data: { field: 'exclude' } },
        h('span', { class: 'label' }, 'Exclude'),
        excludeList,
        h('button', { type: 'button', onclick: () => excludeList.append(eventInput('', 'Excluded event')) }, '+ Exclusion'),
        h('p', { class: 'hint' }, 'A visitor who does one of these between the first and last step does not count.'),
        h('p', { class: 'field-error', id: 'error-exclude', role: 'alert', hidden: true }),
      ),
      field('property', 'Split by property', h('input', { id: 'field-property', name: 'property', type: 'text', list: 'known-properties', value: initial.property, autocomplete: 'off' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, name === null ? 'Create funnel' : 'Replace funnel'), h('a', { class: 'button', href: name === null ? '#/' : `#/funnel/${segment(name)}` }, 'Cancel')),
    ),
  );
}
