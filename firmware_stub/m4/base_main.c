/* Empty program with the same start-up as size_main.c: the baseline subtracted from its size. */
int main(void) { return 0; }
