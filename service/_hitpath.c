/* The cache-hit path of answers.py in one C call: HitPath(answers, local, max_key_bytes)(raw, now).

   answers.py's PyHitPath is the reference, and the contract is its docstring: split the request's
   top-level wire fields (ids apart, tmax dropped, every other byte the key), look the key up in the
   remembered answers, check the ids as the full path would, check that the verdict cache's local
   tier still holds the very scores the answer was built from, and return the ids' bytes followed by
   the remembered tail; None whenever any of that fails. Never raises on any bytes.

   Why C: in the server this path runs cold between two requests' gRPC work, so its cost is every
   Python frame, bytecode and object it touches (loadtest/TUNING.md §12, §20); here it is one call. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#define ID_TAG 0x0A     /* field 1 (id), length-delimited */
#define IMP_ID_TAG 0x12 /* field 2 (imp_id), length-delimited */
#define TMAX_TAG 0x30   /* field 6 (tmax), varint */
#define MAX_ID_CHARS 128

typedef struct {
    PyObject_HEAD
    PyObject *answers; /* dict (an OrderedDict): key bytes -> (cache key, scores, tail bytes) */
    PyObject *local;   /* dict (an OrderedDict): cache key -> (expires, scores) */
    Py_ssize_t max_key_bytes;
    vectorcallfunc vectorcall;
} HitPath;

typedef struct {
    Py_ssize_t key_len, id_len;
    Py_ssize_t id_start, id_end, imp_start, imp_end; /* values of the last id / imp_id field */
} Split;

static PyObject *move_to_end_name;

/* Reads a varint at *pos; 0 when it runs past `end` or past 10 bytes. */
static int read_varint(const unsigned char *raw, Py_ssize_t end, Py_ssize_t *pos, unsigned long long *value) {
    unsigned long long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= end)
            return 0;
        unsigned char byte = raw[(*pos)++];
        v |= (unsigned long long)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *value = v;
            return 1;
        }
    }
    return 0;
}

/* Walks the top-level fields. With `key` or `ids` set, copies the key's or the id fields' bytes
   there (a second walk over bytes the first one accepted). Returns 0 for anything that is not a
   plain, complete encoding of top-level fields. */
static int walk(const unsigned char *raw, Py_ssize_t end, Split *split, char *key, char *ids) {
    Py_ssize_t pos = 0, key_len = 0, id_len = 0;
    while (pos < end) {
        Py_ssize_t start = pos;
        unsigned char tag = raw[pos++];
        unsigned long long value;
        if (tag >= 0x80)
            return 0; /* a field number above 15: not one of ours */
        if ((tag & 7) == 2) {
            if (!read_varint(raw, end, &pos, &value) || value > (unsigned long long)(end - pos))
                return 0;
            Py_ssize_t value_end = pos + (Py_ssize_t)value;
            if (tag == ID_TAG || tag == IMP_ID_TAG) {
                if (tag == ID_TAG)
                    split->id_start = pos, split->id_end = value_end;
                else
                    split->imp_start = pos, split->imp_end = value_end;
                if (ids)
                    memcpy(ids + id_len, raw + start, value_end - start);
                id_len += value_end - start;
            } else {
                if (key)
                    memcpy(key + key_len, raw + start, value_end - start);
                key_len += value_end - start;
            }
            pos = value_end;
        } else if ((tag & 7) == 0) {
            if (!read_varint(raw, end, &pos, &value))
                return 0;
            if (tag != TMAX_TAG) {
                if (key)
                    memcpy(key + key_len, raw + start, pos - start);
                key_len += pos - start;
            }
        } else {
            return 0;
        }
    }
    split->key_len = key_len;
    split->id_len = id_len;
    return 1;
}

/* What the full path's check_impression_ids accepts: UTF-8, at most 128 characters, no NUL. */
static int id_ok(const unsigned char *value, Py_ssize_t len) {
    if (len == 0)
        return 1;
    if (memchr(value, 0, len) != NULL)
        return 0;
    int ascii = 1;
    for (Py_ssize_t i = 0; i < len; i++)
        if (value[i] >= 0x80) {
            ascii = 0;
            break;
        }
    if (ascii)
        return len <= MAX_ID_CHARS;
    if (len > 4 * MAX_ID_CHARS)
        return 0;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)value, len, "strict");
    if (text == NULL) {
        PyErr_Clear();
        return 0;
    }
    int ok = PyUnicode_GET_LENGTH(text) <= MAX_ID_CHARS;
    Py_DECREF(text);
    return ok;
}

static int move_to_end(PyObject *mapping, PyObject *key) {
    PyObject *result = PyObject_CallMethodOneArg(mapping, move_to_end_name, key);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

static PyObject *answer(HitPath *self, PyObject *raw_object, double now) {
    if (!PyBytes_Check(raw_object)) {
        PyErr_SetString(PyExc_TypeError, "raw: expected bytes");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(raw_object);
    Py_ssize_t end = PyBytes_GET_SIZE(raw_object);
    Split split = {0, 0, 0, 0, 0, 0};
    if (!walk(raw, end, &split, NULL, NULL) || split.key_len > self->max_key_bytes)
        Py_RETURN_NONE;
    PyObject *key = PyBytes_FromStringAndSize(NULL, split.key_len);
    if (key == NULL)
        return NULL;
    walk(raw, end, &split, PyBytes_AS_STRING(key), NULL);

    PyObject *result = NULL;
    PyObject *entry = PyDict_GetItemWithError(self->answers, key); /* borrowed */
    if (entry == NULL) {
        if (PyErr_Occurred())
            goto done;
        goto none;
    }
    /* Held from here on: decoding an id allocates, and a collection then could run code that
       drops the entry from the mapping. */
    Py_INCREF(entry);
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3 || !PyBytes_Check(PyTuple_GET_ITEM(entry, 2)))
        goto none;
    if (!id_ok(raw + split.id_start, split.id_end - split.id_start) ||
        !id_ok(raw + split.imp_start, split.imp_end - split.imp_start))
        goto none; /* the full path reports it */
    PyObject *cache_key = PyTuple_GET_ITEM(entry, 0);
    PyObject *held = PyDict_GetItemWithError(self->local, cache_key); /* borrowed */
    if (held == NULL) {
        if (PyErr_Occurred())
            goto done;
        goto none;
    }
    if (!PyTuple_CheckExact(held) || PyTuple_GET_SIZE(held) != 2 || !PyFloat_CheckExact(PyTuple_GET_ITEM(held, 0)) ||
        PyTuple_GET_ITEM(held, 1) != PyTuple_GET_ITEM(entry, 1) || PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(held, 0)) < now)
        goto none; /* expired, evicted or recomputed: the full path decides again */

    PyObject *tail = PyTuple_GET_ITEM(entry, 2);
    if (move_to_end(self->answers, key) < 0 || move_to_end(self->local, cache_key) < 0)
        goto done;
    result = PyBytes_FromStringAndSize(NULL, split.id_len + PyBytes_GET_SIZE(tail));
    if (result != NULL) {
        walk(raw, end, &split, NULL, PyBytes_AS_STRING(result));
        memcpy(PyBytes_AS_STRING(result) + split.id_len, PyBytes_AS_STRING(tail), PyBytes_GET_SIZE(tail));
    }
    goto done;
none:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(entry);
    Py_DECREF(key);
    return result;
}

static PyObject *HitPath_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "HitPath(raw, now): takes exactly two positional arguments");
        return NULL;
    }
    double now = PyFloat_AsDouble(args[1]);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    return answer((HitPath *)callable, args[0], now);
}

static PyObject *HitPath_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"answers", "local", "max_key_bytes", NULL};
    PyObject *answers, *local;
    Py_ssize_t max_key_bytes;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!n:HitPath", names, &PyDict_Type, &answers, &PyDict_Type,
                                     &local, &max_key_bytes))
        return NULL;
    if (max_key_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "max_key_bytes: must be >= 0");
        return NULL;
    }
    HitPath *self = (HitPath *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->answers = Py_NewRef(answers);
    self->local = Py_NewRef(local);
    self->max_key_bytes = max_key_bytes;
    self->vectorcall = HitPath_vectorcall;
    return (PyObject *)self;
}

static int HitPath_traverse(HitPath *self, visitproc visit, void *arg) {
    Py_VISIT(self->answers);
    Py_VISIT(self->local);
    return 0;
}

static int HitPath_clear(HitPath *self) {
    Py_CLEAR(self->answers);
    Py_CLEAR(self->local);
    return 0;
}

static void HitPath_dealloc(HitPath *self) {
    PyObject_GC_UnTrack(self);
    HitPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef HitPath_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(HitPath, vectorcall), READONLY, NULL},
    {"max_key_bytes", T_PYSSIZET, offsetof(HitPath, max_key_bytes), READONLY, "largest key remembered, in bytes"},
    {NULL},
};

static PyTypeObject HitPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "brandsafe.service._hitpath.HitPath",
    .tp_doc = "HitPath(answers, local, max_key_bytes)(raw, now) -> bytes | None: answers.PyHitPath in C.",
    .tp_basicsize = sizeof(HitPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = HitPath_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(HitPath, vectorcall),
    .tp_traverse = (traverseproc)HitPath_traverse,
    .tp_clear = (inquiry)HitPath_clear,
    .tp_dealloc = (destructor)HitPath_dealloc,
    .tp_members = HitPath_members,
};

static struct PyModuleDef hitpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "brandsafe.service._hitpath",
    .m_doc = "The verdict cache's hit path in C; answers.PyHitPath is its reference.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__hitpath(void) {
    move_to_end_name = PyUnicode_InternFromString("move_to_end");
    if (move_to_end_name == NULL || PyType_Ready(&HitPathType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&hitpath_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "HitPath", (PyObject *)&HitPathType) < 0 ||
        PyModule_AddIntConstant(module, "MAX_ID_CHARS", MAX_ID_CHARS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
